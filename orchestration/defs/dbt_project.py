"""The dbt project as the code location sees it, and its manifest.

Nothing here reads the environment: the target and the warehouse come from the settings
the code location builds (orchestration/build.py), and reach dbt on its command line.
"""

import importlib.metadata
import json
import sys
from functools import cached_property
from pathlib import Path

import yaml
from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from segmint.config import PROJECT_DIR

# profiles.yml reads the DuckDB file from this dbt variable, and from SEGMINT_DUCKDB_PATH
# only when dbt runs by hand: in a run, the warehouse resource's path is the one both Python
# steps and dbt steps write, whatever the launchpad sets.
DUCKDB_PATH_VAR = "segmint_duckdb_path"
# The files a parse reads: the two project files, and the folders dbt_project.yml names
# (dbt's defaults where it names none), singular tests included.
_PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
_PATH_KEYS = {
    "model-paths": ["models"], "macro-paths": ["macros"], "seed-paths": ["seeds"],
    "snapshot-paths": ["snapshots"], "test-paths": ["tests"], "analysis-paths": ["analyses"],
}  # fmt: skip

dbt_project = DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt next to this interpreter, so an unactivated virtual environment works."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else "dbt"


class SegmintDbtResource(DbtCliResource):
    """dagster-dbt's resource, without work a segmint step never uses.

    - No `dbt --version` process on every run: dagster-dbt runs it once per resource to learn
      the dbt version (9 s measured, half of it importing dbt-snowflake). When the dbt
      executable is the one installed beside this interpreter, the installed dbt-core's
      version is the same answer.
    - No dbt adapter inside the Dagster process: before each invocation dagster-dbt builds
      one (profile, project, every macro parsed: 1.5 s a step under cProfile, 6 s of a run at
      2,000 people) for `fetch_row_counts` and `fetch_column_metadata`, which segmint does not
      call. dbt itself runs in its own process as always.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args):
        return None


def warehouse_vars(duckdb_path: Path | str) -> list[str]:
    """The `--vars` that point dbt at the run's warehouse (every step passes the same)."""
    return ["--vars", json.dumps({DUCKDB_PATH_VAR: str(duckdb_path)})]


def _sources_of_truth(project_dir: Path) -> list[str]:
    config = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    folders = [p for key, default in _PATH_KEYS.items() for p in config.get(key, default)]
    return [*_PROJECT_FILES, *folders]


def manifest_is_stale(project: DbtProject = dbt_project) -> bool:
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for name in _sources_of_truth(Path(project.project_dir)):
        path = Path(project.project_dir) / name
        files = [path] if path.is_file() else path.rglob("*")
        if any(f.is_file() and f.stat().st_mtime > built for f in files):
            return True
    return False


def ensure_manifest(target: str, duckdb_path: Path) -> None:
    """Parse when the project changed since the last manifest, so the asset graph matches
    the SQL on disk (a plain `segmint run` does not go through `dagster dev`). The parse
    uses the run's target and variables, so the steps' partial parsing starts from it."""
    if manifest_is_stale():
        SegmintDbtResource(
            project_dir=dbt_project, target=target, dbt_executable=dbt_executable()
        ).cli(
            ["parse", "--quiet", *warehouse_vars(duckdb_path)], target_path=dbt_project.target_path
        ).wait()
