"""Validated loading of landing files into the ``raw`` schema of the warehouse.

Every row of every file is checked against its table's contract (``segmint/contracts``),
compiled to SQL (:mod:`segmint.contract_sql`), inside the warehouse: valid rows go to
``raw.<table>``, invalid ones to ``raw.quarantined_rows`` with the file, the row number, the
field, the reason and the raw payload. Rows of someone erased before (an email, device or
shop account on ``privacy.suppression_list``) are not written at all and are counted as
suppressed. Invariant: rows read = rows loaded + rows quarantined + rows suppressed, per
file. The same contract checked in Python with jsonschema
(:func:`reference_violations`) is the reference the tests hold the SQL to.

A load is one transaction: if any file is unreadable or misses a required column, the load
stops with a :class:`LoadError` naming the file and the problem and nothing is written.
Files are tracked by SHA-256 checksum in ``raw.loaded_files``: loading the same content again
is a no-op.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import fastjsonschema

from segmint import privacy, tables
from segmint.config import LOAD_MEMORY_LIMIT
from segmint.contract_sql import trimmed, violations_sql
from segmint.contracts import TABLES, Contract, contracts
from segmint.snowflake import SNOWFLAKE_TYPES

RAW_SCHEMA = "raw"
READERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json"}
_BATCH_ROWS = 100_000  # rows per chunk of the Python reference check
_META_COLUMNS = (
    ("_load_id", "varchar"),
    ("_source_file", "varchar"),
    ("_source_row", "bigint"),
    ("_loaded_at", "timestamp"),
)


class LoadError(Exception):
    """A file cannot be loaded at all (unreadable, or a required column is missing)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass
class FileResult:
    table: str
    path: Path
    checksum: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_suppressed: int = 0  # rows of people erased before: not written (segmint.privacy)
    skipped_as: str | None = None  # set when the same content was loaded before
    ignored_columns: list[str] = field(default_factory=list)
    # the file's columns, lower-cased -> as named in the file (read once, when planning)
    columns: dict[str, str] | None = field(default=None, repr=False, compare=False)


@dataclass
class LoadReport:
    load_id: str
    files: list[FileResult] = field(default_factory=list)
    unrecognized: list[Path] = field(default_factory=list)

    def totals(self) -> dict[str, dict[str, int]]:
        """Per table: files, rows read, loaded, quarantined and suppressed (skipped files
        count nothing)."""
        out = {
            t: {"files": 0, "read": 0, "loaded": 0, "quarantined": 0, "suppressed": 0}
            for t in TABLES
        }
        for f in self.files:
            if f.skipped_as:
                continue
            row = out[f.table]
            row["files"] += 1
            row["read"] += f.rows_read
            row["loaded"] += f.rows_loaded
            row["quarantined"] += f.rows_quarantined
            row["suppressed"] += f.rows_suppressed
        return out


# ---------------------------------------------------------------------------------------
# Discovery


def table_for(path: Path) -> str | None:
    """The raw table a landing file belongs to, from its name or its folder.

    ``orders.parquet``, ``orders_2026-11-01.csv`` and ``orders/part-1.jsonl`` all belong to
    ``orders``; the longest matching table name wins (``order_items`` is not ``orders``).
    """
    if path.suffix.lower() not in READERS:
        return None
    for candidate in (path.stem.lower(), path.parent.name.lower()):
        for table in sorted(TABLES, key=len, reverse=True):
            if re.fullmatch(rf"{table}([_\-.].*)?", candidate):
                return table
    return None


def discover(landing_dir: Path) -> tuple[list[tuple[str, Path]], list[Path]]:
    """Files to load (table, path) in contract order, and files that match no table.

    The ``truth/`` folder written by the generator is not landing data and is not read.
    """
    found: list[tuple[str, Path]] = []
    unrecognized: list[Path] = []
    for path in sorted(landing_dir.rglob("*")):
        rel = path.relative_to(landing_dir)
        if not path.is_file() or rel.parts[0] == "truth" or path.name.startswith("."):
            continue
        table = table_for(path)
        if table is None:
            unrecognized.append(path)
        else:
            found.append((table, path))
    found.sort(key=lambda tp: (TABLES.index(tp[0]), str(tp[1])))
    return found, unrecognized


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------
# Warehouse objects


def ensure_raw_tables(con) -> None:
    """Create the raw schema and every contract table, empty, if they do not exist.

    An absent source is then an empty table and the dbt project still builds. ``con`` is
    DuckDB's or a Snowflake connection (segmint.snowflake); on Snowflake the column names
    are left unquoted, so that they fold to upper case as every model's names do.
    """
    snowflake = tables.is_snowflake(con)

    def column(name: str, kind: str) -> str:
        if snowflake:
            return f"{name} {SNOWFLAKE_TYPES[kind]}"
        return f"{_q(name)} {kind}"

    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    for contract in contracts().values():
        cols = [column(c.name, c.sql_type) for c in contract.columns]
        cols += [column(name, kind) for name, kind in _META_COLUMNS]
        con.execute(f"create table if not exists {RAW_SCHEMA}.{contract.table} ({', '.join(cols)})")
    for name, definition in _LOG_TABLES.items():
        cols = ", ".join(column(c, kind) for c, kind in definition)
        con.execute(f"create table if not exists {RAW_SCHEMA}.{name} ({cols})")
        for added in _ADDED_COLUMNS.get(name, ()):  # warehouses created before the column
            con.execute(f"alter table {RAW_SCHEMA}.{name} add column if not exists "
                        f"{column(*added)}")  # fmt: skip
    privacy.ensure_tables(con)  # the suppression list dbt reads beside the raw tables


_LOG_TABLES = {
    "quarantined_rows": (
        ("load_id", "varchar"), ("source_table", "varchar"), ("source_file", "varchar"),
        ("row_number", "bigint"), ("field", "varchar"), ("reason", "varchar"),
        ("errors", "varchar"), ("payload", "varchar"), ("quarantined_at", "timestamp"),
    ),
    "loaded_files": (
        ("load_id", "varchar"), ("source_table", "varchar"), ("file_path", "varchar"),
        ("checksum", "varchar"), ("rows_read", "bigint"), ("rows_loaded", "bigint"),
        ("rows_quarantined", "bigint"), ("loaded_at", "timestamp"),
        ("rows_suppressed", "bigint"),
    ),
}  # fmt: skip
# Columns added to a log table after its first release: added to existing warehouses.
_ADDED_COLUMNS = {"loaded_files": (("rows_suppressed", "bigint"),)}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------
# Reading and coercion


# The delimiters a CSV file may use: spreadsheets in many locales write ';', other tools tab
# or '|'. The first is taken when the header row reads the same with several.
CSV_DELIMITERS = (",", ";", "\t", "|")


def csv_dialect(path: Path) -> tuple[str, list[str]]:
    """The delimiter of a CSV file and its header row, read in Python: DuckDB's dialect
    sniffer fails on a damaged row among the first ones, and the header is all segmint
    needs to know. The delimiter is the one that splits the header into the most names."""
    headers = {}
    for delimiter in CSV_DELIMITERS:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            headers[delimiter] = next(csv.reader(fh, delimiter=delimiter), [])
    delimiter = max(CSV_DELIMITERS, key=lambda d: len(headers[d]))
    return delimiter, headers[delimiter]


def _reader_sql(path: Path, rejects: str | None = None) -> str:
    """The reader of a landing file. A CSV row the reader cannot take (too many or too few
    columns, bytes that are not UTF-8, a line over the size limit) goes to the temp table
    ``rejects`` with its line and the reader's message, and the rest of the file is read."""
    kind = READERS[path.suffix.lower()]
    p = _lit(str(path))
    if kind == "parquet":
        return f"read_parquet({p}, file_row_number = true)"
    if kind == "csv":
        # comment = '': DuckDB's sniffer would otherwise take a row starting with '#' for a
        # comment line and drop it without a trace.
        rejects = rejects or f"_rejects_{uuid.uuid4().hex[:8]}"
        delimiter, header = csv_dialect(path)
        columns = ", ".join(f"{_lit(name)}: 'VARCHAR'" for name in header)
        return (
            f"read_csv({p}, auto_detect = false, header = true, columns = {{{columns}}}, "
            f"delim = {_lit(delimiter)}, quote = '\"', escape = '\"', comment = '', "
            "store_rejects = true, "
            f"rejects_table = {_lit(rejects)}, rejects_scan = {_lit(rejects + '_scan')})"
        )
    # JSON Lines: read as lines (a control character no JSON text holds raw as the
    # delimiter, no quoting), so that a broken line is a row to quarantine, not a failed
    # file; each line is parsed in SQL. Values are taken as written (no type guessing).
    rejects = rejects or f"_rejects_{uuid.uuid4().hex[:8]}"
    return (
        f"read_csv({p}, auto_detect = false, header = false, columns = {{'json': 'VARCHAR'}}, "
        f"delim = {_lit(_NO_DELIMITER)}, quote = '', escape = '', comment = '', "
        f"store_rejects = true, rejects_table = {_lit(rejects)}, "
        f"rejects_scan = {_lit(rejects + '_scan')})"
    )


_NO_DELIMITER = chr(1)


def _json_object(parsed: str) -> str:
    """SQL: the line ``json`` is a JSON object. ``parsed`` is the line parsed under try(),
    NULL when the text is not JSON; valid JSON that starts with ``{`` is an object."""
    starts = "case when starts_with(json, '{') then true else starts_with(ltrim(json), '{') end"
    return f"coalesce({parsed} is not null and {starts}, false)"


def _text_of(path: Path, column: str) -> str:
    """SQL for a column's value as text, exactly as the file holds it."""
    if READERS[path.suffix.lower()] == "json":
        return f"json_extract_string(json, {_lit('$.' + json.dumps(column))})"
    return f"cast({_q(column)} as varchar)"


def _is_empty_json_lines(path: Path) -> bool:
    """An empty file (zero bytes, whatever its format), or a JSON Lines file with no record,
    has no columns either: it is an empty table and loads zero rows."""
    if path.stat().st_size == 0:
        return True
    if READERS[path.suffix.lower()] != "json":
        return False
    with path.open("rb") as fh:
        return not any(line.strip() for line in fh)


def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str] | None:
    """Column names of a file, lower-cased and trimmed, mapped to their names in the file.

    None for JSON Lines: they have no header; their keys are read when the file is staged
    (``_json_keys``), inside the load's transaction.
    """
    if READERS[path.suffix.lower()] == "json":
        return None
    source = _reader_sql(path)
    try:
        if READERS[path.suffix.lower()] == "csv":
            _, names = csv_dialect(path)
            if len(set(names)) != len(names) or not all(n.strip() for n in names):
                raise LoadError(path, f"the header row names a column twice or not at all: {names}")
        else:
            described = con.execute(f"describe select * from {source}").fetchall()
            names = [name for name, *_ in described if name != "file_row_number"]
    except duckdb.Error as exc:
        raise LoadError(path, f"cannot be read: {str(exc).splitlines()[0]}") from exc
    if READERS[path.suffix.lower()] == "parquet":
        # DuckDB renames a column whose name differs from another's only in case
        # ("Status" beside "status" reads as "Status_1"): the file's own names say so.
        import pyarrow.parquet as pq

        spellings = _spellings(pq.read_schema(path).names)
    else:
        spellings = _spellings(names)
    twice = {k: v for k, v in spellings.items() if len(v) > 1}
    if twice:
        raise LoadError(
            path,
            "columns name the same field twice (names are matched ignoring case and "
            f"surrounding spaces): {'; '.join(', '.join(map(repr, v)) for v in twice.values())}",
        )
    return {key: spelled[0] for key, spelled in _spellings(names).items()}


def _json_keys(con: duckdb.DuckDBPyConnection, path: Path, name: str) -> dict[str, list[str]]:
    """The keys of the JSON objects of a JSON Lines file, lower-cased and trimmed, each with
    every spelling the lines use (one pass over the lines; those the reader refuses are read
    again when the file is staged). Lines from different producers may spell a key
    differently ("Email", "email"): each line's value is taken from the spelling it uses."""
    source = _reader_sql(path, rejects=f"{name}_krejects")
    # Text that is not JSON has no keys (try), nor has JSON that is not an object ([]).
    names = con.execute(
        f"select distinct unnest(try(json_keys(json))) from {source} order by 1"
    ).fetchall()
    return _spellings(name for (name,) in names)


def _spellings(names: Iterable[str]) -> dict[str, list[str]]:
    """Each name lower-cased and trimmed (as the contracts name columns) -> the names in the
    file that read so."""
    spellings: dict[str, list[str]] = {}
    for name in names:
        spellings.setdefault(name.strip().lower(), []).append(name)
    return spellings


def _check_required(contract: Contract, path: Path, present: dict[str, str]) -> None:
    missing = [c for c in contract.required if c not in present]
    if missing:
        raise LoadError(path, f"required column(s) missing: {', '.join(missing)}")


def _coerced_json(col_sql: str, json_type: str, fmt: str | None) -> str:
    """SQL for a JSON value of one field: typed when the text parses, else the text itself.

    The validator then sees numbers as numbers and rejects text that is not one, with the
    original value in its message. Timestamps and dates are checked on DuckDB's reading of
    them, so what passes here is what staging can parse.
    """
    v = f"nullif({trimmed(col_sql)}, '')"
    if json_type == "integer":
        d = f"try_cast({v} as double)"
        return (
            f"case when {d} is null or not isfinite({d}) then to_json({v}) "
            f"when {d} = trunc({d}) and abs({d}) < 9.223372036854776e18 "
            f"then to_json(cast({d} as bigint)) when {d} = trunc({d}) then to_json({v}) "
            f"else to_json({d}) end"
        )
    if json_type == "number":
        d = f"try_cast({v} as double)"
        return f"case when {d} is null or not isfinite({d}) then to_json({v}) else to_json({d}) end"
    if fmt == "date-time":
        ts = f"try_cast({v} as timestamptz)"
        return (
            f"coalesce(to_json(strftime(timezone('UTC', {ts}), '%Y-%m-%dT%H:%M:%S.%fZ')), "
            f"to_json({v}))"
        )
    if fmt == "date":
        return f"coalesce(to_json(strftime(try_cast({v} as date), '%Y-%m-%d')), to_json({v}))"
    return f"to_json(nullif({col_sql}, ''))"


def _typed(col_sql: str, json_type: str, fmt: str | None) -> str:
    """SQL for the value stored in raw (only ever applied to validated rows)."""
    if json_type == "integer":
        return f"cast(cast(nullif({trimmed(col_sql)}, '') as double) as bigint)"
    if json_type == "number":
        return f"cast(nullif({trimmed(col_sql)}, '') as double)"
    if fmt in ("date-time", "date"):
        return f"nullif({trimmed(col_sql)}, '')"
    return f"nullif({col_sql}, '')"


def _stage_file(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    path: Path,
    present: dict[str, str] | None,
) -> tuple[str, dict[str, str]]:
    """The file as text columns with a 1-based row number and the row's payload, and the
    file's columns (``present``; for JSON Lines, None: read from its lines here).

    Parquet files are read through a view: their row numbers are the file's own, so every
    read agrees, and a payload is only built for the rows that are quarantined. CSV rows are
    numbered in reading order, so their text is copied once as read into a temp table, and
    the view reads that copy; JSON Lines are staged as their fields (_stage_json_lines).
    Raises LoadError when the file lacks a required column.
    """
    name = f"_landing_{uuid.uuid4().hex[:8]}"
    source = _reader_sql(path, rejects=f"{name}_rejects")
    reader = READERS[path.suffix.lower()]
    spellings: dict[str, list[str]] = {}
    try:
        if reader == "json" and present is None:
            spellings = _json_keys(con, path, name)
            present = {key: names[0] for key, names in spellings.items()}
    except duckdb.Error as exc:
        raise LoadError(path, f"cannot be read: {exc}") from exc
    _check_required(contract, path, present)
    cols = []
    for col in contract.columns:
        value = _text_of(path, present[col.name]) if col.name in present else "null"
        cols.append(f"cast({value} as varchar) as {_q(col.name)}")
    if reader == "json":
        payload = "json"
    else:
        fields = ", ".join(f"{_lit(k)}: {_text_of(path, v)}" for k, v in present.items())
        payload = f"to_json({{{fields}}})"
    try:
        if reader == "parquet":
            con.execute(
                f"""create temp view {name} as
                    select file_row_number + 1 as _row, {", ".join(cols)},
                           cast({payload} as varchar) as _payload
                    from {source}"""
            )
        elif reader == "csv":
            # The text is copied once as read. A row's number in the file is its place in
            # that copy (DuckDB appends in reading order, with consecutive rowids from a
            # base) plus the rows the reader rejected before it.
            con.execute(f"create temp table {name}_src as select * from {source}")
            row, copied = _numbered(con, name, f"{name}_src", header=True)
            con.execute(
                f"""create temp view {name} as
                    select _segmint_row as _row, {", ".join(cols)},
                           cast({payload} as varchar) as _payload
                    from (select s.*, {row} as _segmint_row from {copied})"""
            )
        else:
            _stage_json_lines(con, contract, name, source, spellings)
            row, lines = _numbered(con, name, f"{name}_lines", header=False)
            con.execute(
                f"""insert into {name}_rejected
                    select {row}, '(row)', '(row): not a JSON object', '[{{"field": "(row)",
                           "reason": "not a JSON object"}}]', json
                    from {lines}
                    where not _segmint_object and trim(json) <> ''"""
            )
            columns = ", ".join(f"s.{_q(c.name)}" for c in contract.columns)
            con.execute(
                f"""create temp view {name} as
                    select {row} as _row, {columns}, json as _payload
                    from {lines} where _segmint_object"""
            )
    except duckdb.Error as exc:
        raise LoadError(path, f"cannot be read: {exc}") from exc
    return name, present


def _stage_json_lines(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    name: str,
    source: str,
    spellings: dict[str, list[str]],
) -> None:
    """A JSON Lines file as ``<name>_lines``, one row per line in reading order: its fields
    as text columns (every field from one parse, a list of paths), whether it is a JSON
    object, and the line itself only where it is not one. The other lines are not kept (a
    copy of them held as much memory as the file's size): those the contract quarantines are
    read again for their payload (_json_payloads)."""
    paths: list[str] = []
    fields = []
    for c in contract.columns:
        values = []
        for key in spellings.get(c.name, []):
            paths.append(_lit("$." + json.dumps(key)))
            values.append(f"_segmint_values[{len(paths)}]")
        value = values[0] if len(values) == 1 else f"coalesce({', '.join(values)})"
        fields.append(f"{value if values else 'cast(null as varchar)'} as {_q(c.name)}")
    names = ", ".join(_q(c.name) for c in contract.columns)
    # A file whose lines hold none of the contract's keys still parses each line (for the
    # object test), through a path no line has.
    listed = ", ".join(paths) or _lit('$.""')
    parsed = f"try(json_extract_string(json, [{listed}]))"
    con.execute(
        f"""create temp table {name}_lines as
            select {names}, _segmint_object, case when not _segmint_object then json end as json
            from (select json, _segmint_object, {", ".join(fields)}
                  from (select json, _segmint_values, {_json_object("_segmint_values")}
                                   as _segmint_object
                        from (select json, {parsed} as _segmint_values from {source})))"""
    )


def _numbered(
    con: duckdb.DuckDBPyConnection, name: str, table: str, header: bool
) -> tuple[str, str]:
    """SQL for each row's number in the file, and the relation to read it from (``table``
    as ``s``): its place among the rows read, plus the rows the reader rejected before it
    (quarantined as ``<name>_rejected``)."""
    kept = _kept_row_number(con, table)
    shift = _rejected_rows(con, name, header=header)
    return _shifted(kept, f"{table} as s", shift)


def _shifted(kept: str, relation: str, shift: str | None) -> tuple[str, str]:
    """SQL for a row's number in the file from ``kept`` (its number among the rows the
    reader kept), and ``relation`` joined to the ``shift`` table of _rejected_rows."""
    if not shift:
        return kept, relation
    return (
        f"{kept} + coalesce(g._segmint_shift, 0)",
        f"{relation} asof left join {shift} as g on {kept} > g._segmint_before",
    )


def _kept_row_number(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """SQL (over alias ``s``) for a row's number among the rows of ``table``, in the order
    they were appended. A table filled by one statement has consecutive rowids, so the
    number is the rowid less the base; were they ever not consecutive, the numbers are
    stored in the table instead (``_segmint_kept``, a sort by rowid)."""
    stats = f"select min(rowid), max(rowid), count(*) from {table}"
    low, high, n = con.execute(stats).fetchall()[0]
    if not n or high - low + 1 == n:
        return f"(s.rowid - {int(low or 0) - 1})"
    con.execute(f"alter table {table} add column _segmint_kept bigint")
    con.execute(
        f"""update {table} as t set _segmint_kept = n.k
            from (select rowid as r, row_number() over (order by rowid) as k from {table}) as n
            where t.rowid = n.r"""
    )
    return "s._segmint_kept"


def _rejected_rows(con: duckdb.DuckDBPyConnection, name: str, header: bool) -> str | None:
    """The rows the reader rejected, as ``<name>_rejected``; returns the name of a table
    that shifts the kept rows' numbers to their rows in the file (None: nothing rejected).

    The reader numbers the rows it keeps 1, 2, 3...; a rejected row's ``line`` counts the
    file's rows, with the header if there is one (a quoted line break does not start a
    row). Kept row k is row k + j of the file, j being the number of rejected rows before
    it: the rejected rows r_1 < r_2 < ... leave r_j - j kept rows before them, and an as-of
    join on ``_segmint_before`` finds the last j (``_segmint_shift``) with r_j - j < k.
    """
    rejected = f"{name}_rejected"
    # A JSON line is one value: whatever the reader refused, it refused the whole row.
    field = "coalesce(column_name, '(row)')" if header else "'(row)'"
    con.execute(
        f"""create temp table {rejected} as
            select line - {int(header)} as _row,
                   string_agg({field}, ',' order by column_idx) as field,
                   string_agg({field} || ': ' || lower(replace(
                       error_type, '_', ' ')) || ': ' || error_message, '; '
                       order by column_idx) as reason,
                   cast(to_json(list({{'field': {field},
                                       'reason': error_message}} order by column_idx)) as varchar)
                       as errors,
                   max(csv_line) as payload
            from {name}_rejects
            group by line"""
    )
    if not con.execute(f"select count(*) from {rejected}").fetchall()[0][0]:
        return None
    con.execute(
        f"""create temp table {name}_shift as
            select before as _segmint_before, max(j) as _segmint_shift from (
                select _row - row_number() over (order by _row) as before,
                       row_number() over (order by _row) as j
                from {rejected})
            group by before"""
    )
    return f"{name}_shift"


def check_rows(table: str, rows: list[int], docs: list[str]) -> list[tuple[int, str, str, str]]:
    """(row, fields, reasons, errors_json) for every document that breaks the contract,
    checked with fastjsonschema and explained by jsonschema (the Python reference)."""
    contract = contracts()[table]
    validate = contract.validate
    bad = []
    for row, text in zip(rows, docs, strict=True):
        record = {k: v for k, v in json.loads(text).items() if v is not None}
        try:
            validate(record)
        except fastjsonschema.JsonSchemaValueException:
            errors = contract.errors(record)
            reasons = "; ".join(f"{f}: {r}" for f, r in errors)
            payload = json.dumps([{"field": f, "reason": r} for f, r in errors])
            bad.append((row, ",".join(f for f, _ in errors), reasons, payload))
    return bad


def _chunks(
    con: duckdb.DuckDBPyConnection, contract: Contract, staged: str, n_rows: int
) -> Iterator[tuple[list[int], list[str]]]:
    """The staged rows as coerced JSON documents, a window of row numbers at a time."""
    doc = ", ".join(
        f"{_lit(c.name)}, {_coerced_json(_q(c.name), c.json_type, c.format)}"
        for c in contract.columns
    )
    for lo in range(1, n_rows + 1, _BATCH_ROWS):
        hi = lo + _BATCH_ROWS - 1
        batch = con.sql(
            f"select _row, json_object({doc}) from {staged} where _row between {lo} and {hi}"
        ).to_arrow_table()
        yield batch.column(0).to_pylist(), batch.column(1).to_pylist()


def reference_violations(
    con: duckdb.DuckDBPyConnection, contract: Contract, staged: str
) -> list[tuple[int, str, str, str]]:
    """The staged rows that break the contract, checked in Python (fastjsonschema for the
    verdict, jsonschema for the reasons): the reference the SQL checks are held to."""
    n_rows = con.execute(f"select count(*) from {staged}").fetchall()[0][0]
    bad: list[tuple[int, str, str, str]] = []
    for rows, docs in _chunks(con, contract, staged, n_rows):
        bad.extend(check_rows(contract.table, rows, docs))
    return bad


def _load_file(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    result: FileResult,
    load_id: str,
    now: str,
) -> None:
    path = result.path
    if _is_empty_json_lines(path):
        _record_file(con, result, load_id, now)
        return
    present = result.columns if result.columns is not None else _columns(con, path)
    staged, present = _stage_file(con, contract, path, present)
    result.ignored_columns = sorted(set(present) - {c.name for c in contract.columns})
    try:
        kept = _without_suppressed(con, contract, staged, result)
        bad_rows = f"{staged}_bad"
        con.execute(f"create temp table {bad_rows} as {violations_sql(contract, kept, _q)}")
        n_bad = con.execute(f"select count(*) from {bad_rows}").fetchall()[0][0]
        without_bad = f" anti join {bad_rows} as b on s._row = b._row" if n_bad else ""
        meta = f"{_lit(load_id)}, {_lit(str(path))}, s._row, {_lit(now)}::timestamp"
        typed = ", ".join(
            _typed(f"s.{_q(c.name)}", c.json_type, c.format) for c in contract.columns
        )
        # Rows read = loaded + quarantined + suppressed: the loaded ones counted as inserted
        # (no pass over the file of its own to count them).
        result.rows_loaded = con.execute(
            f"""insert into {RAW_SCHEMA}.{contract.table}
                select {typed}, {meta}
                from {kept} as s{without_bad}"""
        ).fetchall()[0][0]
        if n_bad:
            payloads = staged
            if READERS[path.suffix.lower()] == "json":
                payloads = _json_payloads(con, staged, path, bad_rows)
            con.execute(
                f"""insert into {RAW_SCHEMA}.quarantined_rows
                    select {_lit(load_id)}, {_lit(contract.table)}, {_lit(str(path))}, b._row,
                           b.field, b.reason, b.errors, s._payload, {_lit(now)}::timestamp
                    from {bad_rows} as b join {payloads} as s on s._row = b._row
                    order by b._row"""
            )
        result.rows_quarantined = n_bad
        result.rows_read = result.rows_loaded + result.rows_quarantined + result.rows_suppressed
        if _exists_temp(con, f"{staged}_rejected"):
            # Rows the reader could not take: quarantined with its message and the raw line.
            rejected = con.execute(
                f"""insert into {RAW_SCHEMA}.quarantined_rows
                    select {_lit(load_id)}, {_lit(contract.table)}, {_lit(str(path))}, _row,
                           field, reason, errors, payload, {_lit(now)}::timestamp
                    from {staged}_rejected order by _row"""
            ).fetchall()[0][0]
            result.rows_read += rejected
            result.rows_quarantined += rejected
        _record_file(con, result, load_id, now)
    finally:
        con.execute(f"drop view if exists {staged}_kept")
        con.execute(f"drop view if exists {staged}")
        for suffix in ("_bad", "_suppressed", "_rejected", "_rejects", "_rejects_scan",
                       "_lines", "_src", "_shift", "_krejects", "_krejects_scan", "_prejects",
                       "_prejects_scan", "_payloads"):  # fmt: skip
            con.execute(f"drop table if exists {staged}{suffix}")


def _json_payloads(con: duckdb.DuckDBPyConnection, name: str, path: Path, bad_rows: str) -> str:
    """The lines of the rows in ``bad_rows`` (``_row``, ``_payload``), read again from the
    file: the n-th line the reader keeps is the n-th staged one (a window with an empty
    OVER () keeps reading order), shifted past the rejected lines as when it was staged."""
    source = _reader_sql(path, rejects=f"{name}_prejects")
    row, lines = _shifted(
        "s._segmint_kept",
        f"(select row_number() over () as _segmint_kept, json from {source}) as s",
        f"{name}_shift" if _exists_temp(con, f"{name}_shift") else None,
    )
    con.execute(
        f"""create temp table {name}_payloads as
            select _row, _payload
            from (select {row} as _row, s.json as _payload from {lines})
            where _row in (select _row from {bad_rows})"""
    )
    return f"{name}_payloads"


def _without_suppressed(
    con: duckdb.DuckDBPyConnection, contract: Contract, staged: str, result: FileResult
) -> str:
    """The staged rows less those of people erased before (segmint.privacy.load_suppression),
    which are counted in ``result`` and written nowhere: neither loaded nor quarantined, so
    their values never reach the warehouse file. The erasure log records how many."""
    suppression = privacy.load_suppression(con, contract.table, lambda c: f"s.{_q(c)}")
    if suppression is None:
        return staged
    where, params = suppression
    con.execute(
        f"create temp table {staged}_suppressed as select s._row from {staged} as s where {where}",
        params,
    )
    counted = con.execute(f"select count(*) from {staged}_suppressed").fetchall()
    result.rows_suppressed = counted[0][0]
    if not result.rows_suppressed:
        return staged
    con.execute(
        f"create temp view {staged}_kept as select s.* from {staged} as s "
        f"anti join {staged}_suppressed as x on s._row = x._row"
    )
    privacy.log_suppressed_at_load(con, f"{RAW_SCHEMA}.{contract.table}", result.path.name,
                                   result.rows_suppressed)  # fmt: skip
    return f"{staged}_kept"


def _exists_temp(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_tables() where temporary and table_name = ?", [name]
        ).fetchall()[0][0]
    )


def _record_file(
    con: duckdb.DuckDBPyConnection, result: FileResult, load_id: str, now: str
) -> None:
    columns = ", ".join(c for c, _ in _LOG_TABLES["loaded_files"])
    con.execute(
        f"insert into {RAW_SCHEMA}.loaded_files ({columns}) "
        "values (?, ?, ?, ?, ?, ?, ?, ?::timestamp, ?)",
        [
            load_id,
            result.table,
            str(result.path),
            result.checksum,
            result.rows_read,
            result.rows_loaded,
            result.rows_quarantined,
            now,
            result.rows_suppressed,
        ],
    )


# ---------------------------------------------------------------------------------------
# Entry point


def load(
    landing_dir: Path,
    target,
    files: Iterable[tuple[str, Path]] | None = None,
    memory_limit: str = LOAD_MEMORY_LIMIT,
) -> LoadReport:
    """Validate and load every landing file under ``landing_dir`` into the warehouse.

    ``target`` is a DuckDB file (a path or segmint.warehouse.DuckDBWarehouse) or a
    segmint.snowflake.SnowflakeWarehouse. ``memory_limit`` bounds the DuckDB that reads the
    files (beyond it, large files spill to disk). Raises LoadError (and writes nothing) when a file
    is unreadable or misses a required column; raises FileNotFoundError when the landing
    folder does not exist.
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist")
    if files is None:
        found, unrecognized = discover(landing_dir)
    else:
        found, unrecognized = list(files), []
    report = LoadReport(load_id=uuid.uuid4().hex, unrecognized=unrecognized)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    if getattr(target, "kind", "duckdb") == "snowflake":
        _load_into_snowflake(target, found, report, now, memory_limit)
        return report

    duckdb_path = Path(getattr(target, "path", target))
    duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(duckdb_path))
    try:
        _prepare(con, memory_limit)
        known = dict(
            con.execute(f"select checksum, file_path from {RAW_SCHEMA}.loaded_files").fetchall()
        )
        report.files = _plan(con, found, known)
        with tables.transaction(con):
            _load_new_files(con, report, now)
    finally:
        con.close()
    return report


def _prepare(con: duckdb.DuckDBPyConnection, memory_limit: str = LOAD_MEMORY_LIMIT) -> None:
    con.execute("set TimeZone = 'UTC'")
    # Large files spill to disk instead of growing the process without bound.
    con.execute(f"set memory_limit = {_lit(memory_limit)}")
    ensure_raw_tables(con)


def _plan(
    con: duckdb.DuckDBPyConnection, found: list[tuple[str, Path]], known: dict[str, str]
) -> list[FileResult]:
    """First pass: every file readable and complete, before anything is written; files whose
    checksum was loaded before (``known``: checksum -> path) are marked skipped."""
    all_contracts = contracts()
    results = []
    known = dict(known)
    for table, path in found:
        # JSON Lines have no header: their keys are read once they are staged (_load_file).
        present = None if _is_empty_json_lines(path) else _columns(con, path)
        if present is not None:
            _check_required(all_contracts[table], path, present)
        digest = checksum(path)
        result = FileResult(table=table, path=path, checksum=digest, columns=present)
        if digest in known:
            result.skipped_as = known[digest]
        else:
            known[digest] = str(path)
        results.append(result)
    return results


def _load_new_files(con: duckdb.DuckDBPyConnection, report: LoadReport, now: str) -> None:
    all_contracts = contracts()
    for result in report.files:
        if result.skipped_as is None:
            _load_file(con, all_contracts[result.table], result, report.load_id, now)


def _load_into_snowflake(warehouse, found: list[tuple[str, Path]], report: LoadReport,
                         now: str, memory_limit: str) -> None:  # fmt: skip
    """The same load on Snowflake: the files are read and checked against the contract where
    they are (the loader's machine), by the same SQL in an in-memory DuckDB with no file;
    the rows loaded, the quarantined rows and the file records then travel to Snowflake as
    Snowflake loads files (Parquet, ``PUT`` to each table's stage, ``COPY INTO``), in one
    transaction. Checksums are Snowflake's ``raw.loaded_files``: a leftover DuckDB file is
    never read.
    """
    import tempfile

    with warehouse.connect(step="load") as sf:
        ensure_raw_tables(sf)  # DDL, before the transaction (it would commit one)
        known = dict(sf.execute(f"select checksum, file_path from {RAW_SCHEMA}.loaded_files")
                     .fetchall())  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="segmint-load-") as folder:
            work = duckdb.connect()
            try:
                work.execute(f"set temp_directory = {_lit(str(Path(folder) / 'spill'))}")
                _prepare(work, memory_limit)
                report.files = _plan(work, found, known)
                _load_new_files(work, report, now)
                parts = []
                for name in [*TABLES, "quarantined_rows", "loaded_files"]:
                    relation = f"{RAW_SCHEMA}.{name}"
                    if not work.execute(f"select count(*) from {relation}").fetchall()[0][0]:
                        continue
                    part = Path(folder) / f"{name}.parquet"
                    work.execute(f"copy {relation} to {_lit(str(part))} (format parquet)")
                    parts.append((relation, part))
            finally:
                work.close()
            with tables.transaction(sf):
                for relation, part in parts:
                    sf.load_parquet(relation, part)
