"""Tables Python steps own in the warehouse: typed creation and frame inserts (DuckDB)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:  # pandas loads with the first frame inserted, not with this module
    import pandas as pd


def ensure_tables(con: duckdb.DuckDBPyConnection, schema: str, tables: dict[str, str]) -> None:
    """Create the schema and each table (name -> column definitions) if missing."""
    con.execute(f"create schema if not exists {schema}")
    for name, columns in tables.items():
        con.execute(f"create table if not exists {schema}.{name} ({columns})")


def insert_frame(
    con: duckdb.DuckDBPyConnection, relation: str, frame: pd.DataFrame, replace: bool = False
) -> None:
    """Insert a frame's rows by column name (``insert or replace`` on the key if asked)."""
    if frame.empty:
        return
    verb = "insert or replace" if replace else "insert"
    con.register("_segmint_frame", frame)
    try:
        con.execute(f"{verb} into {relation} by name select * from _segmint_frame")
    finally:
        con.unregister("_segmint_frame")
