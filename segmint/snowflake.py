"""The Snowflake target's warehouse object, for segmint's Python steps.

Parameters come from the settings (the same variables as the ``snowflake`` target of
profiles.yml); this module never reads the environment. Statements bind their values on the
server (``paramstyle="qmark"``), so a value such as the PII salt never becomes statement text
or an entry in Snowflake's query history.

Every session runs with ``TIMEZONE = 'UTC'`` (the raw-data contract reads offset-less
timestamps as UTC) and a ``QUERY_TAG`` naming segmint and the step, so that a team can find
and cost each step in Snowflake's query history.

The steps are written once, against the few methods a DuckDB connection has
(``execute(sql, parameters)``, ``fetchall``, ``fetchone``, ``df``, ``register``):
:class:`SnowflakeConnection` provides them on top of snowflake-connector-python, so the same
step code runs on both warehouses. Two differences it absorbs:

- **Case.** Snowflake returns unquoted names in UPPERCASE; ``df()`` gives lower-case column
  names, as DuckDB does, so that frames carry the names the SQL and the models use.
- **Frames.** A data frame is loaded as Snowflake loads files: written as Parquet, ``PUT`` to
  the target table's own stage and copied with ``COPY INTO ... MATCH_BY_COLUMN_NAME`` (what
  the connector's ``write_pandas`` does, without its temporary stage). Row-by-row inserts
  with bound values would cost a round trip per batch and, on the emulator, seconds per
  hundred rows (28 s for 2,000 rows measured).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

QUERY_TAG_PREFIX = "segmint"
# The job's steps that open Snowflake sessions: each may run as its own role, on its own
# virtual warehouse (SEGMINT_SNOWFLAKE_STEPS, segmint.config). Their query tag is
# ``segmint:<step>``.
STEPS = ("load", "erasure", "ticket_tones", "quality", "customer_clustering",
         "customer_predictions", "experiment_plots", "sync")  # fmt: skip
STEP_PARAMETERS = ("role", "warehouse")


def parse_steps(text: str, source: str = "SEGMINT_SNOWFLAKE_STEPS"
                ) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:  # fmt: skip
    """Per-step connection parameters from JSON, e.g.
    ``{"load": {"role": "SEGMINT_LOADER", "warehouse": "LOAD_WH"}, "sync": {"role": ...}}``.

    Only the steps of :data:`STEPS` and the parameters of :data:`STEP_PARAMETERS`; anything
    else is refused, naming it (a typo would otherwise run the step with the default role).
    """
    import json

    from segmint.config import ConfigError

    if not text.strip():
        return ()
    try:
        steps = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source} is not JSON: {exc}") from exc
    if not isinstance(steps, dict):
        raise ConfigError(f"{source} must map steps to parameters, e.g. "
                          '{"load": {"role": "SEGMINT_LOADER"}}')  # fmt: skip
    out = []
    for step, parameters in sorted(steps.items()):
        if step not in STEPS:
            raise ConfigError(f"{source}: unknown step {step!r}; steps: {', '.join(STEPS)}")
        if not isinstance(parameters, dict) or not all(
            key in STEP_PARAMETERS and isinstance(value, str) and value
            for key, value in parameters.items()
        ):
            raise ConfigError(
                f"{source}: step {step!r} takes {' and/or '.join(STEP_PARAMETERS)}, as "
                f"non-empty text; got {parameters!r}"
            )
        out.append((step, tuple(sorted(parameters.items()))))
    return tuple(out)


# UTC sessions; and ``timestamp`` in segmint's own tables means TIMESTAMP_NTZ whatever the
# account's default mapping (the values are UTC, without an offset, as on DuckDB).
SESSION_PARAMETERS = {"TIMEZONE": "UTC", "TIMESTAMP_TYPE_MAPPING": "TIMESTAMP_NTZ"}


def connect(parameters: Iterable[tuple[str, str]], query_tag: str | None = None):
    """A raw Snowflake connection from (parameter, value) pairs, server-side binding."""
    import snowflake.connector

    kwargs: dict[str, object] = dict(parameters)
    if not kwargs.get("account"):
        from segmint.config import ConfigError

        raise ConfigError("the snowflake target needs SNOWFLAKE_ACCOUNT (and its credentials)")
    if "port" in kwargs:
        kwargs["port"] = int(str(kwargs["port"]))
    session = dict(SESSION_PARAMETERS)
    if query_tag:
        session["QUERY_TAG"] = query_tag
    return snowflake.connector.connect(**kwargs, paramstyle="qmark", session_parameters=session)


@dataclass(frozen=True)
class SnowflakeWarehouse:
    """A Snowflake database reached with the snowflake target's parameters.

    BI tools read the marts schema in place (through their own role), so there is no read
    copy; and Snowflake serves many sessions at once, so ``exclusive`` takes no lock of its
    own: one segmint run at a time is the Dagster run queue's rule (segmint.config).
    """

    parameters: tuple[tuple[str, str], ...]
    # Per step, the parameters that differ from the target's (role, warehouse): parse_steps.
    steps: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    kind: str = field(default="snowflake", init=False)
    bi_path: None = field(default=None, init=False)

    @property
    def database(self) -> str:
        return dict(self.parameters).get("database", "")

    def describe(self) -> str:
        p = dict(self.parameters)
        return f"snowflake://{p.get('account', '?')}/{p.get('database', '?')}"

    def for_step(self, step: str | None) -> tuple[tuple[str, str], ...]:
        """The connection parameters of one step: the target's, with the step's role and
        warehouse when configured."""
        overrides = dict(dict(self.steps).get(step, ()))
        merged = {**dict(self.parameters), **overrides}
        return tuple(merged.items())

    def connect(self, read_only: bool = False, step: str | None = None) -> SnowflakeConnection:
        tag = f"{QUERY_TAG_PREFIX}:{step}" if step else QUERY_TAG_PREFIX
        return SnowflakeConnection(connect(self.for_step(step), query_tag=tag))

    def exists(self) -> bool:
        return True

    def sqlalchemy(self, step: str = "quality") -> tuple[str, dict]:
        """SQLAlchemy's URL and engine arguments (snowflake-sqlalchemy; Great Expectations reads
        through them). Only the account is in the URL; the rest, secrets included, are
        connection arguments, never text."""
        from urllib.parse import quote

        p = dict(self.for_step(step))
        connect_args: dict[str, object] = {
            key: value for key, value in p.items() if key not in ("account", "port")
        }
        if "port" in p:
            connect_args["port"] = int(str(p["port"]))
        connect_args["session_parameters"] = {
            **SESSION_PARAMETERS,
            "QUERY_TAG": f"{QUERY_TAG_PREFIX}:{step}",
        }
        return f"snowflake://{quote(p.get('account', ''), safe='')}", {"connect_args": connect_args}

    @contextlib.contextmanager
    def exclusive(self, command: str) -> Iterator[None]:
        yield None

    def compact(self) -> None:
        """Nothing to rewrite: Snowflake keeps deleted rows in Time Travel and Fail-safe for
        their retention periods, then purges them (docs/snowflake.md, "Erasure")."""
        return None

    def defer_compaction(self) -> None:
        return None

    def compaction_pending(self) -> bool:
        return False


def _bindable(value: Any) -> Any:
    """A value the connector binds: numpy scalars and pandas timestamps become Python's."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    if isinstance(value, (dt.datetime, dt.date, Decimal, str, int, float, bool, bytes)):
        return value
    return str(value)


class SnowflakeConnection:
    """The DuckDB-connection methods segmint's steps use, on a Snowflake session."""

    dialect = "snowflake"

    def __init__(self, raw, owner: bool = True) -> None:
        self.raw = raw
        self._owner = owner
        self._cursor = raw.cursor()

    # --- statements -----------------------------------------------------------------------

    def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> SnowflakeConnection:
        params = [_bindable(v) for v in parameters] if parameters is not None else None
        self._cursor.execute(sql, params)
        return self

    def cursor(self) -> SnowflakeConnection:
        """Another cursor on the same session, as DuckDB's ``cursor()``. The session's
        transaction and temporary tables are shared: writers take turns (a lock)."""
        return SnowflakeConnection(self.raw, owner=False)

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    @property
    def description(self):
        return self._cursor.description

    def df(self) -> pd.DataFrame:
        """The result as a frame, with lower-case column names (as DuckDB gives them)."""
        import pandas as pd

        names = [c.name.lower() for c in self._cursor.description]
        frame = self._cursor.fetch_pandas_all()
        if frame.empty and len(frame.columns) != len(names):
            return pd.DataFrame(columns=names)
        frame.columns = names
        return frame

    # --- frames -----------------------------------------------------------------------------

    def load_frame(self, relation: str, frame: pd.DataFrame) -> int:
        """Append a frame's rows to an existing table, matching columns by name.

        Data manipulation only (PUT and COPY INTO): safe inside a transaction, which DDL
        would commit.
        """
        if frame.empty:
            return 0
        with tempfile.TemporaryDirectory(prefix="segmint-frame-") as folder:
            path = Path(folder) / "frame.parquet"
            _write_parquet(frame, path)
            self.load_parquet(relation, path)
        return len(frame)

    def load_parquet(self, relation: str, path: Path) -> None:
        """Append a Parquet file's rows to an existing table, matching columns by name
        (case-insensitively): ``PUT`` to the table's own stage, then ``COPY INTO``.

        The table's stage needs no DDL (which would commit an open transaction) and no stage
        privileges beyond the table's; the staged file is purged once copied.
        """
        key = uuid.uuid4().hex
        schema, _, table = relation.rpartition(".")
        stage = f"@{schema}.%{table}" if schema else f"@%{table}"
        os.chmod(path, 0o600)
        self._cursor.execute(
            f"put 'file://{Path(path).as_posix()}' {stage}/{key}/ auto_compress = false"
        )
        self._cursor.execute(
            f"copy into {relation} from {stage}/{key}/ "
            "file_format = (type = parquet use_logical_type = true) "
            "match_by_column_name = case_insensitive purge = true"
        )

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """A temporary table holding the frame (DuckDB registers a view of it).

        Creating it is DDL, which commits an open transaction on Snowflake: register frames
        before ``begin``, as the steps do.
        """
        # Unquoted names: Snowflake folds them to upper case, as it does in the queries.
        columns = ", ".join(f"{c} {_snowflake_type(frame[c])}" for c in frame.columns)
        self._cursor.execute(f"create or replace temporary table {name} ({columns})")
        self.load_frame(name, frame.rename(columns=str))

    def unregister(self, name: str) -> None:
        self._cursor.execute(f"drop table if exists {name}")

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._cursor.close()
        if self._owner:
            self.raw.close()

    def __enter__(self) -> SnowflakeConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Column types as Snowflake spells them, keyed by DuckDB's names (the contracts' and
# segmint's tables' types): the one mapping for tables made from contracts and from frames.
SNOWFLAKE_TYPES = {"varchar": "varchar", "bigint": "number(38, 0)", "double": "double",
                   "boolean": "boolean", "timestamp": "timestamp_ntz"}  # fmt: skip


def _snowflake_type(series: pd.Series) -> str:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return SNOWFLAKE_TYPES["boolean"]
    if pd.api.types.is_integer_dtype(dtype):
        return SNOWFLAKE_TYPES["bigint"]
    if pd.api.types.is_float_dtype(dtype):
        return SNOWFLAKE_TYPES["double"]
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return SNOWFLAKE_TYPES["timestamp"]
    return SNOWFLAKE_TYPES["varchar"]


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet with microsecond timestamps (Snowflake reads them as logical types)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, coerce_timestamps="us", allow_truncated_timestamps=True)


# --- roles and grants ------------------------------------------------------------------
# Who owns each schema segmint writes: the source of the grants below and of
# docs/snowflake.md's table. ``pipeline`` runs the job (dbt and every Python step but the
# sync) and owns what it builds; ``sync`` reads the activation and marts schemas and owns
# its state; ``bi`` reads the marts, nothing else. The pipeline role is granted the sync role,
# so an erasure can delete sync state.
SCHEMA_OWNERS = {
    "raw": "pipeline", "privacy": "pipeline", "reference": "pipeline", "staging": "pipeline",
    "intermediate": "pipeline", "marts": "pipeline", "activation": "pipeline",
    "snapshots": "pipeline", "enrichment": "pipeline", "quality": "pipeline", "ml": "pipeline",
    "sync": "sync",
}  # fmt: skip
SCHEMA_READERS = {"sync": ("activation", "marts"), "bi": ("marts",)}
ROLE_NAMES = {"pipeline": "SEGMINT_PIPELINE", "sync": "SEGMINT_SYNC", "bi": "SEGMINT_BI"}


def grants_sql(database: str, warehouse: str, user: str | None = None,
               roles: dict[str, str] = ROLE_NAMES) -> list[str]:  # fmt: skip
    """The statements an administrator runs once to set segmint up on Snowflake: the roles,
    the database's schemas with their owners, read access by role (future objects included),
    and usage of the virtual warehouse. Printed by ``segmint snowflake grants``; segmint
    never holds the administrator's privileges itself."""
    db = database.upper()
    r = {key: name.upper() for key, name in roles.items()}
    out = ["use role securityadmin;"]
    out += [f"create role if not exists {name};" for name in r.values()]
    out.append(f"grant role {r['sync']} to role {r['pipeline']};")
    out += [f"grant role {name} to role sysadmin;" for name in r.values()]
    if user:
        out += [f"grant role {name} to user {user};" for key, name in r.items() if key != "bi"]
    out += ["use role sysadmin;", f"create database if not exists {db};"]
    for name in r.values():
        out.append(f"grant usage on database {db} to role {name};")
        out.append(f"grant usage on warehouse {warehouse.upper()} to role {name};")
    # dbt creates its own schemas too (models without a custom schema use the target's).
    out.append(f"grant create schema on database {db} to role {r['pipeline']};")
    for schema, owner in SCHEMA_OWNERS.items():
        out.append(f"create schema if not exists {db}.{schema};")
        out.append(f"grant ownership on schema {db}.{schema} to role {r[owner]} "
                   "copy current grants;")  # fmt: skip
    out.append("use role securityadmin;")
    for role, schemas in SCHEMA_READERS.items():
        for schema in schemas:
            where = f"schema {db}.{schema}"
            out.append(f"grant usage on {where} to role {r[role]};")
            for kind in ("tables", "views"):
                out.append(f"grant select on all {kind} in {where} to role {r[role]};")
                out.append(f"grant select on future {kind} in {where} to role {r[role]};")
    return out
