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
- **dbt's temporary relations** (``create or replace temporary view DB.SCHEMA.x__dbt_tmp``,
  sent by incremental models and snapshots from their second run) fail: DuckDB keeps
  temporary objects in catalog ``temp`` only. Mended by dropping the qualification of
  ``*__dbt_tmp`` names, and answering ``describe table`` for them from catalog ``temp`` (dbt
  compares their columns with the target's for ``on_schema_change``).
- **MERGE ... WHEN NOT MATCHED THEN INSERT (...) VALUES (a, b)**, as a snapshot's second run
  sends it, fails with "ambiguous reference": the emulator joins target and source and reads
  the unqualified values from the join. In Snowflake those names can only be the source's;
  mended by qualifying them with the source's alias. Inside dbt's ``begin; merge; commit``
  the emulator's MERGE also failed writing its own bookkeeping (a comment for its temporary
  table) to a second DuckDB database in one transaction; that record is skipped.
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


def _mend_dbt_temporary_relations() -> None:
    import re

    import fakesnow.cursor as cursor
    import fakesnow.transforms as transforms
    import sqlglot
    from sqlglot import exp

    original_execute = cursor.FakeSnowflakeCursor.execute
    qualified = re.compile(r'(?:"?\w+"?\.){1,2}("?\w+__dbt_tmp"?)', re.IGNORECASE)

    def execute(self, command, *args, **kwargs):
        if isinstance(command, str) and "__dbt_tmp" in command.lower():
            command = qualified.sub(r"\1", command)
        return original_execute(self, command, *args, **kwargs)

    cursor.FakeSnowflakeCursor.execute = execute

    original_describe = transforms.describe_table

    def describe(expression, current_database=None, current_schema=None):
        table = expression.find(exp.Table) if isinstance(expression, exp.Describe) else None
        if table is not None and table.name.lower().endswith("__dbt_tmp") and not table.db:
            sql = transforms.transforms.SQL_DESCRIBE_TABLE.substitute(
                catalog="temp", schema="main", table=table.name
            ).replace("FROM _fs_information_schema.", "FROM _fs_global._fs_information_schema.")
            return sqlglot.parse_one(sql, read="duckdb")
        return original_describe(expression, current_database, current_schema)

    transforms.describe_table = describe


def _mend_merge_insert_values() -> None:
    import fakesnow.transforms as transforms
    from sqlglot import exp

    original = transforms.merge

    def merge(expression):
        if isinstance(expression, exp.Merge):
            source = expression.args["using"]
            name = source.alias_or_name
            for when in expression.args["whens"]:
                then = when.args.get("then")
                if isinstance(then, exp.Insert) and then.expression is not None:
                    for value in then.expression.expressions:
                        for column in value.find_all(exp.Column):
                            if not column.table:
                                column.set("table", exp.to_identifier(name))
        return original(expression)

    transforms.merge = merge

    # The emulator's MERGE first creates a temporary table, MERGE_CANDIDATES, and records a
    # comment for it in its own catalog database. Inside dbt's `begin; merge ...; commit`
    # that is a second database written in one DuckDB transaction, which DuckDB refuses;
    # the comment is the emulator's bookkeeping alone, so it is not recorded.
    import fakesnow.cursor as cursor

    original_execute = cursor.FakeSnowflakeCursor._execute

    def execute(self, transformed, *args, **kwargs):
        table = transformed.find(exp.Table) if isinstance(transformed, exp.Create) else None
        if table is not None and table.name.upper() == "MERGE_CANDIDATES":
            transformed.args.pop("table_comment", None)
        return original_execute(self, transformed, *args, **kwargs)

    cursor.FakeSnowflakeCursor._execute = execute


def main(port: int) -> None:
    _mend_null_timestamps()
    _mend_copy_into_temporary_tables()
    _mend_table_comments_with_quotes()
    _mend_dbt_statements()
    _mend_dbt_temporary_relations()
    _mend_merge_insert_values()
    import fakesnow.cli

    sys.exit(fakesnow.cli.main(["-s", "-p", str(port)]))


if __name__ == "__main__":
    main(int(sys.argv[1]))
