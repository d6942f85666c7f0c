"""The raw-data contract compiled to warehouse SQL: every rule of every column, per row.

The JSON Schema files (``segmint/contracts``) stay the single source of truth. Each rule a
contract uses becomes a SQL condition that is true when a row breaks it, and a SQL
expression of the reason, with the field named:

- ``required``: the value is missing or empty;
- ``type``: ``integer`` and ``number`` must read as a finite number (an integer: a whole one
  within 64 bits); strings always are;
- ``format``: ``date-time`` and ``date`` must parse as the warehouse parses them (what
  passes here is what staging can read), ``json-text`` must be valid JSON;
- ``enum``, ``pattern`` (JSON Schema's regular expressions are searched, not anchored;
  ``\\s`` keeps Python's Unicode meaning), ``minimum``/``maximum`` (and their exclusive
  forms), ``minLength``/``maxLength`` (in characters).

As in JSON Schema, a value of the wrong type is not checked further, and an optional field
that is absent is not checked at all. The verdicts equal jsonschema's on the same values
(tests/segmint/test_contract_sql.py holds them to it, on the generator's messy data and on a
Hypothesis corpus); the reference checker stays in :mod:`segmint.load` for those tests.

Values arrive as text exactly as the file holds them (``value(column)`` renders the SQL).
A string is empty when it is ``''``; a number, date or timestamp when it is blank.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from segmint.contracts import Column, Contract

BIGINT_LIMIT = 2**63
# Python's \s (str patterns): the code points str.isspace() accepts. RE2's \s is ASCII only.
_PY_SPACE = (
    r"\t\n\x{0b}\x{0c}\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}"
)
_SUPPORTED = {
    "type", "description", "format", "enum", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "x-enum-from-seed", "x-known-values",
}  # fmt: skip


_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_JSON_EXTENSIONS = r"(?i)(?:^|[^a-z0-9_.])-?(?:inf|infinity|nan)(?:$|[^a-z0-9_])|,\s*[\]}]"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_LAST_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(
    microseconds=1
)


class ContractSqlError(ValueError):
    """A contract uses a rule the SQL compiler does not translate."""


@dataclass(frozen=True)
class Check:
    field: str
    violated: str  # SQL: true when the row breaks the rule
    reason: str  # SQL: the reason, as text


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _shown(value_sql: str) -> str:
    """The value as jsonschema's messages show it: quoted, cut to 80 characters."""
    quoted = f"'''' || replace({value_sql}, '''', '\\''') || ''''"
    return f"(case when length({quoted}) > 80 then left({quoted}, 77) || '...' else {quoted} end)"


def re2_pattern(pattern: str) -> str:
    """A JSON Schema (Python ``re``) pattern as RE2 matches it.

    ``\\s`` and ``\\S`` get Python's Unicode whitespace, and ``$`` also matches before a final
    newline, as in Python. ``\\d``, ``\\w`` and ``\\b`` differ in Unicode too and are refused:
    write ``[0-9]`` or ``[A-Za-z0-9_]`` in the contract.
    """
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in "dwbDWB":
                raise ContractSqlError(
                    f"pattern {pattern!r}: \\{nxt} means something else in Unicode for each "
                    "engine; spell the characters out ([0-9], [A-Za-z0-9_])"
                )
            if nxt == "s":
                out.append(_PY_SPACE if in_class else f"[{_PY_SPACE}]")
            elif nxt == "S":
                if in_class:
                    raise ContractSqlError(f"pattern {pattern!r}: \\S inside a class")
                out.append(f"[^{_PY_SPACE}]")
            else:
                out.append(ch + nxt)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":  # a literal ] first in a class
                out.append("\\]")
                i += 1
        elif ch == "]" and in_class:
            in_class = False
            out.append(ch)
        elif ch == "$" and not in_class:
            out.append(r"(?:\n?\z)")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def trimmed(value: str) -> str:
    """SQL for DuckDB's ``trim(value)``, quick where it changes nothing.

    ``trim`` strips Unicode space separators, and searching for them is slow: a third of
    a large file's checks went to it. Of ASCII, it strips the space alone, so an ASCII text
    with no space at either end is its own trim; any other text is trimmed.
    """
    return (
        f"(case when {value} like ' %' or {value} like '% ' or length({value}) <> "
        f"strlen({value}) then trim({value}) else {value} end)"
    )


def column_checks(column: Column, prop: dict, value: str) -> list[Check]:
    """The checks of one column, in rule order; ``value`` renders its text in SQL."""
    unknown = set(prop) - _SUPPORTED
    if unknown:
        raise ContractSqlError(f"column {column.name}: rules {sorted(unknown)} not supported")
    name = column.name
    checks: list[Check] = []
    numeric = column.json_type in ("integer", "number")
    if numeric or column.format in ("date-time", "date"):
        present = f"nullif({trimmed(value)}, '')"
    else:
        present = f"nullif({value}, '')"
    if column.required:
        checks.append(Check(name, f"{present} is null", _lit("required field is missing or empty")))
    guard = f"{present} is not null"
    if numeric:
        d = f"try_cast({present} as double)"
        good = f"({d} is not null and isfinite({d}))"
        if column.json_type == "integer":
            good = f"({good} and {d} = trunc({d}) and abs({d}) < {float(BIGINT_LIMIT)!r})"
        checks.append(
            Check(
                name,
                f"{guard} and not {good}",
                f"{_shown(present)} || ' is not a valid {column.json_type}'",
            )
        )
        guard = f"{guard} and {good}"
        whole = f"cast(cast({d} as bigint) as varchar)"
        shown = whole if column.json_type == "integer" else f"cast({d} as varchar)"
        for rule, op, words in (
            ("minimum", "<", "is below the minimum"),
            ("maximum", ">", "is above the maximum"),
            ("exclusiveMinimum", "<=", "is not above"),
            ("exclusiveMaximum", ">=", "is not below"),
        ):
            if rule in prop:
                limit = prop[rule]
                checks.append(
                    Check(
                        name,
                        f"{guard} and {d} {op} {float(limit)!r}",
                        f"{shown} || {_lit(f' {words} {limit}')}",
                    )
                )
        return checks
    text = present  # a string as the file holds it (only '' is empty)
    if column.format == "date-time":
        # Years 1 to 9999 in UTC, as an RFC 3339 timestamp can write them (infinity is null).
        good = (
            f"coalesce(epoch_us(try_cast({present} as timestamptz)) "
            f"between {_FIRST_US} and {_LAST_US}, false)"
        )
        checks.append(
            Check(
                name, f"{guard} and not {good}", f"{_shown(present)} || ' is not a valid date-time'"
            )
        )
        return checks
    if column.format == "date":
        dt = f"try_cast({present} as date)"
        good = f"coalesce(isfinite({dt}) and year({dt}) between 1 and 9999, false)"
        checks.append(
            Check(name, f"{guard} and not {good}", f"{_shown(present)} || ' is not a valid date'")
        )
        return checks
    if column.format == "json-text":
        # Standard JSON: DuckDB's reader also takes inf/nan literals and trailing commas,
        # so those are refused outside string literals.
        bare = f"regexp_replace({text}, {_lit(_JSON_STRING)}, '\"\"', 'g')"
        strict = f"not regexp_matches({bare}, {_lit(_JSON_EXTENSIONS)})"
        checks.append(
            Check(
                name,
                f"{guard} and not coalesce(json_valid({text}) and {strict}, false)",
                f"{_shown(text)} || ' is not a valid json-text'",
            )
        )
    elif column.format:
        raise ContractSqlError(f"column {name}: format {column.format} not supported")
    if "enum" in prop:
        allowed = ", ".join(_lit(v) for v in prop["enum"])
        checks.append(
            Check(
                name,
                f"{guard} and {text} not in ({allowed})",
                f"{_shown(text)} || {_lit(' is not one of ' + ', '.join(prop['enum']))}",
            )
        )
    if "pattern" in prop:
        checks.append(
            Check(
                name,
                f"{guard} and not regexp_matches({text}, {_lit(re2_pattern(prop['pattern']))})",
                f"{_shown(text)} || ' does not have the expected shape'",
            )
        )
    if "minLength" in prop:
        checks.append(
            Check(
                name, f"{guard} and length({text}) < {int(prop['minLength'])}", _lit("empty value")
            )
        )
    if "maxLength" in prop:
        checks.append(
            Check(
                name,
                f"{guard} and length({text}) > {int(prop['maxLength'])}",
                _lit(f"longer than {int(prop['maxLength'])} characters"),
            )
        )
    return checks


def contract_checks(contract: Contract, value: Callable[[str], str]) -> list[Check]:
    """Every check of a contract, column by column."""
    checks: list[Check] = []
    for column in contract.columns:
        prop = contract.schema["properties"][column.name]
        checks += column_checks(column, prop, value(column.name))
    return checks


def violations_sql(contract: Contract, relation: str, value: Callable[[str], str]) -> str:
    """SQL: one row per row of ``relation`` that breaks the contract, with ``_row`` and the
    quarantine columns ``field`` (comma-separated), ``reason`` (``field: reason; ...``) and
    ``errors`` (JSON list of {field, reason})."""
    items = ", ".join(
        f"case when {c.violated} then {{'field': {_lit(c.field)}, 'reason': {c.reason}}} end"
        for c in contract_checks(contract, value)
    )
    return f"""
        select _row,
               array_to_string(list_transform(errs, lambda e: e.field), ',') as field,
               array_to_string(list_transform(errs, lambda e: e.field || ': ' || e.reason), '; ')
                   as reason,
               cast(to_json(errs) as varchar) as errors
        from (
            select _row, list_filter([{items}], lambda e: e is not null) as errs
            from {relation}
        )
        where len(errs) > 0
    """
