"""dbt models, seeds and snapshots as Dagster assets; dbt tests become asset checks."""

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from segmint.config import PROJECT_DIR

RAW_PREFIX = "raw"
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


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=SegmintDbtTranslator(),
)
def segmint_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` of the selected nodes: seeds, models, snapshots and their tests."""
    yield from dbt.cli(["build"], context=context).stream()
