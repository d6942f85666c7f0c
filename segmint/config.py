"""Settings read from the environment, with the documented defaults.

Every setting is an environment variable; nothing secret has a default here except the
development salt for PII hashing, which production must override.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(os.environ.get("SEGMINT_PROJECT_DIR", Path(__file__).resolve().parents[1]))

DEV_PII_SALT = "segmint-dev-salt"
PII_SALT_VAR = "SEGMINT_PII_SALT"
# The targets where the public development salt is allowed; anywhere else it is an error.
DEV_TARGETS = ("dev", "ci")


# The snowflake target's connection, read from the same variables as profiles.yml.
SNOWFLAKE_VARS = {
    "account": "SNOWFLAKE_ACCOUNT",
    "user": "SNOWFLAKE_USER",
    "password": "SNOWFLAKE_PASSWORD",
    "private_key_file": "SNOWFLAKE_PRIVATE_KEY_PATH",
    "private_key_file_pwd": "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
    "role": "SNOWFLAKE_ROLE",
    "warehouse": "SNOWFLAKE_WAREHOUSE",
    "database": "SNOWFLAKE_DATABASE",
    "schema": "SNOWFLAKE_SCHEMA",
    "host": "SNOWFLAKE_HOST",
    "port": "SNOWFLAKE_PORT",
    "protocol": "SNOWFLAKE_PROTOCOL",
}
# Per-step role and virtual warehouse on Snowflake (JSON; segmint.snowflake.parse_steps).
SNOWFLAKE_STEPS_VAR = "SEGMINT_SNOWFLAKE_STEPS"
# Never shown in the Dagster UI: passed as the names of their variables.
SNOWFLAKE_SECRETS = ("password", "private_key_file_pwd")


class ConfigError(ValueError):
    """A setting is missing or unsafe for where it is used."""


# Off by default: dbt, Dagster and Great Expectations send no usage statistics.
_TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "false",
}


# DuckDB memory limit of the loader; beyond it, large files spill to disk. 2.5 GB keeps a
# 1M-customer CSV load within 1 GB of a bare ingest's memory for about 5% more time than 4 GB
# (bench/results/load.md).
LOAD_MEMORY_LIMIT = "2.5GB"


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    duckdb_path: Path
    bi_duckdb_path: Path
    landing_dir: Path
    data_docs_dir: Path
    dagster_home: Path
    artifacts_dir: Path
    dbt_target: str
    pii_salt: str
    # Snowflake connection parameters (the snowflake target of profiles.yml, same variables).
    snowflake: tuple[tuple[str, str], ...] = ()
    # Per-step role and warehouse on Snowflake, as JSON text (validated by warehouse()).
    snowflake_steps: str = ""
    load_memory_limit: str = LOAD_MEMORY_LIMIT

    @classmethod
    def from_env(cls) -> Settings:
        project_dir = PROJECT_DIR

        def path(var: str, default: Path) -> Path:
            value = os.environ.get(var)
            return Path(value).expanduser().resolve() if value else default

        duckdb_path = path("SEGMINT_DUCKDB_PATH", project_dir / "warehouse" / "segmint.duckdb")
        return cls(
            project_dir=project_dir,
            duckdb_path=duckdb_path,
            # The BI read copy keeps the warehouse's file name (its catalog name) in a folder
            # beside it: relations compiled by dbt resolve in it unchanged.
            bi_duckdb_path=path(
                "SEGMINT_BI_DUCKDB_PATH", duckdb_path.parent / "bi" / duckdb_path.name
            ),
            landing_dir=path("SEGMINT_LANDING_DIR", project_dir / "data" / "landing"),
            data_docs_dir=path("SEGMINT_DATA_DOCS_DIR", project_dir / "data_docs"),
            dagster_home=path("DAGSTER_HOME", project_dir / ".dagster_home"),
            # Models and plots the steps write (beside the DuckDB file by default).
            artifacts_dir=path("SEGMINT_ARTIFACTS_DIR", duckdb_path.parent),
            dbt_target=os.environ.get("SEGMINT_DBT_TARGET", "dev"),
            pii_salt=os.environ.get(PII_SALT_VAR) or DEV_PII_SALT,
            snowflake=tuple(
                (key, os.environ[var]) for key, var in SNOWFLAKE_VARS.items() if os.environ.get(var)
            ),
            snowflake_steps=os.environ.get(SNOWFLAKE_STEPS_VAR, ""),
            load_memory_limit=os.environ.get("SEGMINT_LOAD_MEMORY_LIMIT") or LOAD_MEMORY_LIMIT,
        )

    @property
    def uses_dev_salt(self) -> bool:
        return self.pii_salt == DEV_PII_SALT

    def check(self) -> Settings:
        """Refuse settings that would leak: the public development salt outside dev and ci."""
        if self.uses_dev_salt and self.dbt_target not in DEV_TARGETS:
            raise ConfigError(
                f"target {self.dbt_target!r} uses the public development PII salt: set "
                f"{PII_SALT_VAR} to a secret value (the hashes of personal data are only as "
                "safe as the salt)"
            )
        return self

    def warehouse(self):
        """The warehouse of the target: Snowflake's, or the embedded DuckDB file."""
        if self.dbt_target == "snowflake":
            from segmint.snowflake import SnowflakeWarehouse, parse_steps

            return SnowflakeWarehouse(self.snowflake, steps=parse_steps(self.snowflake_steps))
        from segmint.warehouse import DuckDBWarehouse

        return DuckDBWarehouse(self.duckdb_path, bi_path=self.bi_duckdb_path)


def settings() -> Settings:
    return Settings.from_env()


def export_environment(s: Settings | None = None) -> Settings:
    """Put the resolved settings into os.environ so dbt and Dagster subprocesses see them.

    dbt reads SEGMINT_DUCKDB_PATH and SEGMINT_PII_SALT through env_var() in profiles.yml and
    the hashing macro; exporting the absolute path keeps Python and dbt on the same file
    whatever the working directory.
    """
    s = s or settings()
    for key, value in _TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    os.environ["SEGMINT_DUCKDB_PATH"] = str(s.duckdb_path)
    os.environ["SEGMINT_BI_DUCKDB_PATH"] = str(s.bi_duckdb_path)
    os.environ["SEGMINT_LANDING_DIR"] = str(s.landing_dir)
    os.environ["DAGSTER_HOME"] = str(s.dagster_home)
    os.environ.setdefault("SEGMINT_DBT_TARGET", s.dbt_target)
    os.environ.setdefault("SEGMINT_PII_SALT", s.pii_salt)
    s.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    _ensure_dagster_home(s.dagster_home)
    return s


# The instance settings segmint needs, whatever launches a run (UI, schedule, sensor, CLI):
# one run at a time (a second waits in the queue instead of failing on the warehouse lock),
# and run monitoring, so that a run whose process died is marked failed by the daemon.
INSTANCE_SETTINGS = {
    "telemetry": {"enabled": False},
    "run_queue": {"max_concurrent_runs": 1},
    "run_monitoring": {"enabled": True, "poll_interval_seconds": 30},
}


def _ensure_dagster_home(home: Path) -> None:
    """Write dagster.yaml with INSTANCE_SETTINGS; keys a user set stay as they are."""
    import yaml

    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    current = (yaml.safe_load(config.read_text()) or {}) if config.exists() else {}
    merged = {**INSTANCE_SETTINGS, **current}
    if merged != current:
        config.write_text(yaml.safe_dump(merged, sort_keys=False))
