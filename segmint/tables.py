"""Tables Python steps own in the warehouse: typed creation, existence and frame inserts.

The steps take a connection: DuckDB's, or segmint.snowflake.SnowflakeConnection, which has
the same methods. What differs between the two warehouses is kept here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads with the first frame inserted, not with this module
    import pandas as pd


def is_snowflake(con) -> bool:
    return getattr(con, "dialect", "duckdb") == "snowflake"


@contextlib.contextmanager
def transaction(con) -> Iterator[None]:
    """One transaction: committed when the block ends, rolled back if it raises.

    Data manipulation only inside it: DDL (a table or a registered frame) commits an open
    transaction on Snowflake, so create and register before.
    """
    con.execute("begin transaction")
    try:
        yield
    except Exception:
        con.execute("rollback")
        raise
    con.execute("commit")


@contextlib.contextmanager
def registered(con, frames: dict[str, pd.DataFrame]) -> Iterator[None]:
    """Frames queryable by name for the block (a view on DuckDB, a temporary table on
    Snowflake), dropped afterwards."""
    try:
        for name, frame in frames.items():
            con.register(name, frame)
        yield
    finally:
        for name in frames:
            con.unregister(name)


def ensure_tables(con, schema: str, tables: dict[str, str]) -> None:
    """Create the schema and each table (name -> column definitions) if missing."""
    con.execute(f"create schema if not exists {schema}")
    for name, columns in tables.items():
        con.execute(f"create table if not exists {schema}.{name} ({columns})")


def exists(con, schema: str, table: str) -> bool:
    """Whether schema.table exists (a table or a view), whatever case the catalog keeps.

    Views are looked up in ``information_schema.views`` too: Snowflake and DuckDB list them
    among the tables, the emulator CI uses does not.
    """
    found = con.execute(
        "select count(*) from (select table_schema, table_name from information_schema.tables "
        "union all select table_schema, table_name from information_schema.views) as relations "
        "where lower(table_schema) = ? and lower(table_name) = ?",
        [schema.lower(), table.lower()],
    ).fetchall()
    return bool(found[0][0])


def declared_columns(columns: str) -> list[str]:
    """The column names of a table definition (``name type ...`` per line, constraints
    skipped)."""
    names = []
    for line in re.sub(r"\([^()]*\)", "", columns).split(","):
        words = line.split()
        if words and words[0].lower() not in ("primary", "unique", "foreign", "check"):
            names.append(words[0].lower())
    return names


def columns(con, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "select lower(column_name) from information_schema.columns "
        "where lower(table_schema) = ? and lower(table_name) = ? order by ordinal_position",
        [schema.lower(), table.lower()],
    ).fetchall()
    return [name for (name,) in rows]


def drop_if_columns_differ(con, schema: str, table: str, definition: str) -> bool:
    """Drop schema.table when its columns are not the definition's (a table that is rebuilt
    every run gets the current version's columns). True when it was dropped."""
    present = columns(con, schema, table)
    if present and sorted(present) != sorted(declared_columns(definition)):
        con.execute(f"drop table {schema}.{table}")
        return True
    return False


def insert_frame(con, relation: str, frame: pd.DataFrame) -> None:
    """Append a frame's rows to a table by column name. Data manipulation only, on both
    warehouses: safe inside a transaction."""
    if frame.empty:
        return
    if is_snowflake(con):
        con.load_frame(relation, frame)
        return
    con.register("_segmint_frame", frame)
    try:
        con.execute(f"insert into {relation} by name select * from _segmint_frame")
    finally:
        con.unregister("_segmint_frame")
