"""Shared fixtures: small generated landing folders and throw-away warehouses.

Before anything imports the Dagster code location, every path setting points into a
temporary folder, so tests never touch the developer's warehouse or Dagster storage.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="segmint-tests-"))
os.environ["SEGMINT_DUCKDB_PATH"] = str(_SESSION_DIR / "default.duckdb")
os.environ["SEGMINT_BI_DUCKDB_PATH"] = str(_SESSION_DIR / "bi" / "default.duckdb")
os.environ["SEGMINT_LANDING_DIR"] = str(_SESSION_DIR / "landing")
os.environ["DAGSTER_HOME"] = str(_SESSION_DIR / "dagster_home")
os.environ["SEGMINT_DBT_TARGET"] = "ci"
os.environ["SEGMINT_DATA_DOCS_DIR"] = str(_SESSION_DIR / "data_docs")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from orchestration.defs.dbt_project import ensure_manifest  # noqa: E402
from segmint.generate import GenerateResult, GeneratorConfig, generate  # noqa: E402

# The dbt assets are built from the manifest: parse first if the project changed (what the
# code location does when it loads), so test modules may import orchestration.defs.dbt.
ensure_manifest("ci", _SESSION_DIR / "default.duckdb")

SMALL = 400


@pytest.fixture(scope="session")
def clean_landing(tmp_path_factory: pytest.TempPathFactory) -> GenerateResult:
    """Parquet landing files for 400 persons, no broken rows."""
    out = tmp_path_factory.mktemp("clean") / "landing"
    return generate(GeneratorConfig(SMALL, seed=7, out=out))


@pytest.fixture(scope="session")
def messy_landing(tmp_path_factory: pytest.TempPathFactory) -> GenerateResult:
    """CSV landing files for 400 persons with 5% of rows broken on purpose."""
    out = tmp_path_factory.mktemp("messy") / "landing"
    return generate(GeneratorConfig(SMALL, seed=8, out=out, messiness=0.05, file_format="csv"))


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Great Expectations keeps DuckDB objects in its module caches, and at interpreter
    teardown nanobind lists them as "leaked" over a screen of lines: harmless, and after every
    result is printed. Standard error is closed for the teardown alone (as `segmint` does),
    from an exit handler: pytest restores its own file descriptors after this hook."""
    import atexit
    import sys

    def quiet_teardown() -> None:
        sys.stderr.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)

    atexit.register(quiet_teardown)
