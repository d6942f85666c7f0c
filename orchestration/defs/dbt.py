"""dbt models, seeds and snapshots as Dagster assets; dbt tests become asset checks."""

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from segmint.config import PROJECT_DIR

RAW_PREFIX = "raw"
PARTIAL_PARSE = "partial_parse.msgpack"
_SOURCES_OF_TRUTH = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "snapshots")


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


def dbt_executable() -> str:
    """The dbt next to this interpreter, so an unactivated virtual environment works."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else "dbt"


def _manifest_is_stale(project: DbtProject) -> bool:
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for name in _SOURCES_OF_TRUTH:
        path = Path(project.project_dir) / name
        files = [path] if path.is_file() else path.rglob("*")
        if any(f.is_file() and f.stat().st_mtime > built for f in files):
            return True
    return False


dbt_project = DbtProject(
    project_dir=PROJECT_DIR,
    profiles_dir=PROJECT_DIR,
    target=os.environ.get("SEGMINT_DBT_TARGET", "dev"),
)
# Parse whenever the project changed since the last manifest, so the asset graph always
# matches the SQL on disk (a plain `segmint run` does not go through `dagster dev`).
if _manifest_is_stale(dbt_project):
    DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()).cli(
        ["parse", "--quiet"], target_path=dbt_project.target_path
    ).wait()


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
# and CI (tests/orchestration/test_pipeline.py), not in every production run.
UNIT_TESTS_EXCLUDED = ["build", "--exclude-resource-type", "unit_test"]


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
    shared = Path(dbt_project.project_dir) / os.environ.get("DBT_TARGET_PATH", "target")
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
    def _assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        invocation = dbt.cli(UNIT_TESTS_EXCLUDED, context=context)
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
