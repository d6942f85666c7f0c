"""dbt models, seeds and snapshots as Dagster assets; dbt tests become asset checks."""

import contextlib
import importlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.defs.dbt_project import dbt_project, warehouse_vars
from orchestration.defs.resources import WarehouseResource

RAW_PREFIX = "raw"
PARTIAL_PARSE = "partial_parse.msgpack"


class SegmintDbtTranslator(DagsterDbtTranslator):
    """Keys and groups from dbt's own structure, never from model names.

    - Sources are tables Python assets write: key ``<schema>/<table>`` (``raw/orders`` from
      the ingestion asset, ``enrichment/ticket_tones`` from the tone step).
    - A node's group is the first folder under its resource path (``staging``,
      ``intermediate``, ``marts``), else its resource type (``seeds``, ``snapshots``).
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            schema = dbt_resource_props.get("schema") or RAW_PREFIX
            return dg.AssetKey([schema, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] == "model" and len(fqn) > 2:
            return fqn[1]
        return f"{dbt_resource_props['resource_type']}s"


if not dbt_project.manifest_path.exists():
    raise RuntimeError(
        f"no dbt manifest at {dbt_project.manifest_path}: load the code location "
        "(orchestration.definitions), which parses the project, or run `dbt parse`"
    )


# The dbt project runs in four steps so that the quality gates and the clustering asset sit
# between them: a failed blocking check on a staging model stops the models built on
# staging; the models step builds the customer marts and customer_features; the clustering
# asset reads those and writes ml.*; the segments step builds what reads ml.* (the segment
# memberships); a failed gate there stops the snapshot and segment history.
STAGE_SELECTIONS = {
    "staging": ("resource_type:seed path:models/staging", "source:ml+"),
    "models": ("path:models/intermediate path:models/marts", "source:ml+ snap_customer_segments+"),
    "segments": ("source:ml+", "snap_customer_segments+"),
    "history": ("snap_customer_segments+", None),
}


# dbt unit tests check the SQL logic on fixed inputs, not the data: they run in `make test`
# and CI (tests/orchestration/test_pipeline.py), not in every production run. Nor does a
# step write dbt's JSON artifacts (manifest.json, run_results.json: about 1 s a step);
# Dagster's event log keeps each node's result and timing, the partial-parse file is still
# written, and `dbt build` by hand writes them as usual.
STEP_BUILD = ["build", "--exclude-resource-type", "unit_test", "--no-write-json"]


# What the Python steps after a dbt step import when they first run, and which costs seconds
# (Great Expectations 3.3 s, scikit-learn 0.9 s on a 2-core machine). Every step of a run
# shares one process (the in-process executor), which waits idle while dbt runs in a process
# of its own: these modules are imported then, in this thread, before reading dbt's events.
WARM_DURING = {
    "staging": ("segmint.quality.validate",),
    "models": ("segmint.clusters", "segmint.predictions"),
}


def warm_imports(modules: tuple[str, ...]) -> None:
    """Import ``modules`` now; a module that fails to import is left to the step that uses
    it, which then reports the error as its own."""
    for module in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def keep_partial_parse(invocation_target: Path) -> None:
    """Hand this step's parse on to the next dbt step.

    dagster-dbt gives every invocation its own target folder and seeds it with the project's
    `target/partial_parse.msgpack`. dbt discards that file whenever the profile differs from
    the one it was parsed with (the warehouse path is part of it), and each of the run's four
    steps then parsed the whole project again. Copying the file back after a step means one
    full parse at most per run (none while the settings stay the same).
    """
    produced = Path(invocation_target) / PARTIAL_PARSE
    if not produced.exists():
        return
    shared = Path(dbt_project.project_dir) / dbt_project.target_path
    shared.mkdir(parents=True, exist_ok=True)
    staging = shared / f".{PARTIAL_PARSE}.{os.getpid()}"
    shutil.copyfile(produced, staging)
    os.replace(staging, shared / PARTIAL_PARSE)


def _stage(stage: str):
    select, exclude = STAGE_SELECTIONS[stage]

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=SegmintDbtTranslator(),
        name=f"dbt_{stage}",
        select=select,
        exclude=exclude,
    )
    def _assets(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                warehouse: WarehouseResource):  # fmt: skip
        # The warehouse resource names the file, for the Python steps and dbt alike.
        invocation = dbt.cli([*STEP_BUILD, *warehouse_vars(warehouse.duckdb)],
                             context=context)  # fmt: skip
        warm_imports(WARM_DURING.get(stage, ()))  # while dbt starts in its own process
        yield from invocation.stream()
        keep_partial_parse(invocation.target_path)

    _assets.__doc__ = f"`dbt build` of the {stage} step: its nodes and their data tests."
    return _assets


dbt_staging_assets = _stage("staging")
dbt_models_assets = _stage("models")
dbt_segments_assets = _stage("segments")
dbt_history_assets = _stage("history")
segmint_dbt_assets = [
    dbt_staging_assets,
    dbt_models_assets,
    dbt_segments_assets,
    dbt_history_assets,
]
