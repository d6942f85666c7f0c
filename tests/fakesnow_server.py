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
- **A table comment with an apostrophe fails, and the client retries it for ever**
  (``fakesnow.info_schema.insert_table_comment_sql`` pastes the comment into a quoted
  literal): dbt's ``persist_docs`` sends ``comment on table ... is $$...customer's...$$``,
  which Snowflake takes. Mended by escaping the quotes.
- **Column comments** fail to parse: in a view's column list (``create or replace view v
  ("ID" comment $$...$$, ...)``) and as ``alter table t alter "ID" comment $$...$$, ...``,
  both what dbt-snowflake sends for ``persist_docs``. Mended by dropping the column comments
  from ``create`` statements and taking those ``alter`` statements as done (they are
  documentation; no row changes).
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


def _mend_table_comments_with_quotes() -> None:
    import fakesnow.info_schema as info_schema

    original = info_schema.insert_table_comment_sql

    def escaped(catalog: str, schema: str, table: str, comment: str) -> str:
        def q(value: str | None) -> str | None:
            return value.replace("'", "''") if isinstance(value, str) else value

        return original(q(catalog), q(schema), q(table), q(comment))

    info_schema.insert_table_comment_sql = escaped


def _mend_dbt_statements() -> None:
    import re

    import fakesnow.cursor as cursor

    original = cursor.FakeSnowflakeCursor.execute
    create = re.compile(r"\s*create\b", re.IGNORECASE)
    alter_comments = re.compile(
        r"\s*alter\s+(?:\w+\s+)?(?:table|view)\s+\S+\s+alter\s+\"[^\"]+\"\s+comment\s+\$\$",
        re.IGNORECASE,
    )
    column_comment = re.compile(r"(\S)\s+comment\s+\$\$.*?\$\$", re.IGNORECASE | re.DOTALL)

    def execute(self, command, *args, **kwargs):
        if isinstance(command, str) and "$$" in command:
            if alter_comments.match(command):
                command = "select 'Statement executed successfully.' as status"
            elif create.match(command):
                command = column_comment.sub(r"\1", command)
        return original(self, command, *args, **kwargs)

    cursor.FakeSnowflakeCursor.execute = execute


def main(port: int) -> None:
    _mend_null_timestamps()
    _mend_copy_into_temporary_tables()
    _mend_table_comments_with_quotes()
    _mend_dbt_statements()
    import fakesnow.cli

    sys.exit(fakesnow.cli.main(["-s", "-p", str(port)]))


if __name__ == "__main__":
    main(int(sys.argv[1]))
