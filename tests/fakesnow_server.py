"""fakesnow's server (Snowflake's wire API on 127.0.0.1), with the emulator's gaps mended.

Run as ``python -m tests.fakesnow_server PORT``. Every workaround here is for the emulator,
not for Snowflake, and is listed in docs/snowflake.md with how the real behaviour was checked:

- **NULL timestamps come back as 1970-01-01** (fakesnow 0.12.1, ``fakesnow.arrow``): the
  struct Snowflake uses for a timestamp is built without a validity mask, so a NULL reads as
  epoch 0. Stored values are right (``count(ts)`` counts them as NULL); only results are
  wrong. Mended by giving the struct the column's nulls.
- **COPY INTO a temporary table fails** ("Table with name ... does not exist"): fakesnow looks
  the target's columns up under the session's database and schema, where DuckDB does not keep
  temporary tables. Mended by looking an unqualified name up as DuckDB resolves it.
"""

from __future__ import annotations

import sys


def _mend_null_timestamps() -> None:
    import fakesnow.arrow as arrow
    import pyarrow as pa
    import pyarrow.compute as pc

    original = arrow.timestamp_to_sf_struct

    def with_nulls(ts):
        struct = original(ts)
        if isinstance(ts, pa.ChunkedArray):
            ts = ts.combine_chunks()
        if not ts.null_count:
            return struct
        return pa.StructArray.from_arrays(
            [struct.field(i) for i in range(struct.type.num_fields)],
            fields=list(struct.type),
            mask=pc.is_null(ts),
        )

    arrow.timestamp_to_sf_struct = with_nulls


def _mend_copy_into_temporary_tables() -> None:
    import duckdb
    import fakesnow.copy_into as copy_into

    original = copy_into._describe_table

    def describe(table, duck_conn, current_database, current_schema):
        try:
            return original(table, duck_conn, current_database, current_schema)
        except duckdb.CatalogException:
            if table.catalog or table.db:
                raise
            rows = duck_conn.execute(f"DESCRIBE {table.name}").fetchall()
            return [(row[0], row[1]) for row in rows]

    copy_into._describe_table = describe


def main(port: int) -> None:
    _mend_null_timestamps()
    _mend_copy_into_temporary_tables()
    import fakesnow.cli

    sys.exit(fakesnow.cli.main(["-s", "-p", str(port)]))


if __name__ == "__main__":
    main(int(sys.argv[1]))
