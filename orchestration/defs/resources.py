"""Resources, configured from the settings the code location builds once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from orchestration.defs.dbt_project import SegmintDbtResource, dbt_executable, dbt_project
from segmint.config import (
    DEV_PII_SALT,
    LOAD_MEMORY_LIMIT,
    PII_SALT_VAR,
    SNOWFLAKE_SECRETS,
    SNOWFLAKE_VARS,
    Settings,
)
from segmint.snowflake import SnowflakeWarehouse, parse_steps
from segmint.warehouse import DuckDBWarehouse, WarehouseBusy


class SnowflakeParameters(dg.Config):
    """The snowflake target's connection (profiles.yml's variables); secrets are EnvVars, so
    the UI shows their names, never their values."""

    account: str = ""
    user: str = ""
    password: str = ""
    private_key_file: str = ""
    private_key_file_pwd: str = ""
    role: str = ""
    warehouse: str = ""
    database: str = ""
    schema_name: str = ""
    host: str = ""
    port: str = ""
    protocol: str = ""
    # Per-step role and warehouse, JSON (SEGMINT_SNOWFLAKE_STEPS; segmint.snowflake.parse_steps).
    steps: str = ""

    def pairs(self) -> tuple[tuple[str, str], ...]:
        values = {key: getattr(self, "schema_name" if key == "schema" else key)
                  for key in SNOWFLAKE_VARS}  # fmt: skip
        return tuple((key, value) for key, value in values.items() if value)


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse and the landing folder.

    A run holds the warehouse for writing from its first step to its last (one writer, see
    segmint.warehouse): a second run, or a `segmint load` from a shell, is refused at once
    with what holds it. Sensors and schedules only read the landing folder and take no lock.
    On the snowflake target the steps connect to Snowflake and no DuckDB file is touched.
    """

    duckdb_path: str
    landing_dir: str
    bi_duckdb_path: str = ""
    data_docs_dir: str = ""
    # Where the steps write files (models, plots): beside the DuckDB file when empty.
    artifacts_dir: str = ""
    # The PII salt: an EnvVar in production (the UI shows its name, never its value).
    pii_salt: str = DEV_PII_SALT
    target: str = "dev"
    snowflake: SnowflakeParameters = SnowflakeParameters()
    load_memory_limit: str = LOAD_MEMORY_LIMIT

    @property
    def warehouse(self) -> DuckDBWarehouse | SnowflakeWarehouse:
        if self.target == "snowflake":
            return SnowflakeWarehouse(self.snowflake.pairs(),
                                      steps=parse_steps(self.snowflake.steps))  # fmt: skip
        bi = Path(self.bi_duckdb_path) if self.bi_duckdb_path else None
        return DuckDBWarehouse(Path(self.duckdb_path), bi_path=bi)

    def connect(self, step: str):
        """A connection for one step (DuckDB's, or a Snowflake session tagged with the step)."""
        return self.warehouse.connect(step=step)

    @property
    def artifacts(self) -> Path:
        return Path(self.artifacts_dir) if self.artifacts_dir else Path(self.duckdb_path).parent

    @property
    def duckdb(self) -> Path:
        return Path(self.duckdb_path)

    @property
    def landing(self) -> Path:
        return Path(self.landing_dir)

    @property
    def docs(self) -> Path:
        return Path(self.data_docs_dir)

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[WarehouseResource]:
        run = context.dagster_run
        if run is None:  # a sensor or schedule evaluation, a definitions check
            yield self
            return
        try:
            with self.warehouse.exclusive(f"Dagster run {run.run_id}"):
                if context.instance is not None:
                    fail_interrupted_runs(context.instance, run.run_id, self.duckdb, context.log)
                yield self
        except WarehouseBusy as exc:
            raise dg.Failure(description=str(exc)) from exc


def fail_interrupted_runs(instance: dg.DagsterInstance, current_run_id: str | None,
                          duckdb_path: Path, log=None) -> list[str]:  # fmt: skip
    """Mark as failed every run that says it is still going but cannot be.

    Called while holding the warehouse: a live run would hold it, so any other run of this
    instance (segmint's) still STARTED was interrupted (its process killed, the machine restarted).
    """
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    )
    failed = []
    for record in records:
        run = record.dagster_run
        if run.run_id == current_run_id:
            continue
        instance.report_run_failed(
            run,
            message=(
                f"interrupted: its process stopped without finishing and the warehouse "
                f"{duckdb_path} was free; marked failed by the next run"
            ),
        )
        failed.append(run.run_id)
        if log is not None:
            log.warning(f"run {run.run_id} was interrupted and is now marked failed")
    return failed


def _snowflake_parameters(settings: Settings) -> SnowflakeParameters:
    if settings.dbt_target != "snowflake":
        return SnowflakeParameters()
    present = dict(settings.snowflake)
    values = {
        ("schema_name" if key == "schema" else key): (
            dg.EnvVar(SNOWFLAKE_VARS[key]) if key in SNOWFLAKE_SECRETS else present[key]
        )
        for key in present
    }
    parse_steps(settings.snowflake_steps)  # refused when the code location loads, not mid-run
    return SnowflakeParameters(**values, steps=settings.snowflake_steps)


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(
            duckdb_path=str(settings.duckdb_path),
            landing_dir=str(settings.landing_dir),
            bi_duckdb_path=str(settings.bi_duckdb_path),
            data_docs_dir=str(settings.data_docs_dir),
            artifacts_dir=str(settings.artifacts_dir),
            pii_salt=DEV_PII_SALT if settings.uses_dev_salt else dg.EnvVar(PII_SALT_VAR),
            target=settings.dbt_target,
            snowflake=_snowflake_parameters(settings),
            load_memory_limit=settings.load_memory_limit,
        ),
        "dbt": SegmintDbtResource(
            project_dir=dbt_project, target=settings.dbt_target, dbt_executable=dbt_executable()
        ),
    }
