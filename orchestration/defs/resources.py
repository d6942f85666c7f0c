"""Resources, configured from the environment (see the README's configuration table)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.defs.dbt import dbt_executable, dbt_project
from segmint.config import Settings


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse file and the landing folder are."""

    duckdb_path: str
    landing_dir: str

    @property
    def duckdb(self) -> Path:
        return Path(self.duckdb_path)

    @property
    def landing(self) -> Path:
        return Path(self.landing_dir)


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(
            duckdb_path=str(settings.duckdb_path), landing_dir=str(settings.landing_dir)
        ),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    }
