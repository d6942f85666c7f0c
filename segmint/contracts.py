"""The raw-data contract: one JSON Schema per raw table, kept in ``segmint/contracts/``.

The schemas are the single source of truth for the loader (which columns exist, which are
required, their types and rules), for the raw table DDL and for the documentation.
Rows are validated with fastjsonschema (fast verdict on every row); the full list of errors
of a rejected row comes from jsonschema. Both read the same schema and the same format
checkers, defined here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema

CONTRACT_DIR = Path(__file__).parent / "contracts"

# Load order: parents before children (orders before order_items) so reports read naturally.
TABLES: tuple[str, ...] = (
    "crm_contacts",
    "web_events",
    "orders",
    "order_items",
    "support_tickets",
    "consent_events",
    "erasure_requests",
)

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?)?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _is_date_time(value: str) -> bool:
    if not _RFC3339.match(value):
        return False
    text = value.replace("z", "Z").replace("Z", "+00:00")
    # Python < 3.12 accepts at most 6 fractional digits: validate the calendar part only.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _is_json_text(value: str) -> bool:
    """Standard JSON (RFC 8259): Python's NaN and Infinity extensions are refused."""
    try:
        json.loads(value, parse_constant=_no_constant)
    except ValueError:
        return False
    return True


FORMATS = {"date-time": _is_date_time, "date": _is_date, "json-text": _is_json_text}


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())
    for name, func in FORMATS.items():
        checker.checks(name)(func)
    return checker


SQL_TYPES = {"string": "varchar", "integer": "bigint", "number": "double"}


@dataclass(frozen=True)
class Column:
    name: str
    json_type: str
    format: str | None
    required: bool
    description: str

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.json_type]


@dataclass(frozen=True)
class Contract:
    table: str
    description: str
    schema: dict[str, Any] = field(repr=False)
    columns: tuple[Column, ...]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def validate(self):
        return _compiled(self.table)

    def errors(self, row: dict[str, Any]) -> list[tuple[str, str]]:
        """Every contract violation of one row, as (field, reason) pairs."""
        found = []
        missing_listed = False
        for err in sorted(_explainer(self.table).iter_errors(row), key=lambda e: list(e.path)):
            if err.validator == "required":
                # jsonschema reports each missing field apart: list them all once, in order.
                if not missing_listed:
                    missing = [r for r in self.schema["required"] if r not in row]
                    found.extend((name, "required field is missing or empty") for name in missing)
                    missing_listed = True
                continue
            name = ".".join(str(p) for p in err.path) or "(row)"
            found.append((name, _reason(err)))
        return found


def _reason(err: jsonschema.ValidationError) -> str:
    value = repr(err.instance)
    if len(value) > 80:
        value = value[:77] + "..."
    match err.validator:
        case "type":
            expected = err.validator_value
            expected = expected[0] if isinstance(expected, list) else expected
            return f"{value} is not a valid {expected}"
        case "format":
            return f"{value} is not a valid {err.validator_value}"
        case "enum":
            return f"{value} is not one of {', '.join(err.validator_value)}"
        case "minimum":
            return f"{value} is below the minimum {err.validator_value}"
        case "maximum":
            return f"{value} is above the maximum {err.validator_value}"
        case "pattern":
            return f"{value} does not have the expected shape"
        case "minLength":
            return "empty value"
        case _:
            return err.message


def _parse(table: str, schema: dict[str, Any]) -> Contract:
    required = set(schema.get("required", []))
    columns = []
    for name, prop in schema["properties"].items():
        types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        json_type = next(t for t in types if t != "null")
        if json_type not in SQL_TYPES:
            raise ValueError(f"contract {table}: column {name} has unsupported type {json_type}")
        columns.append(
            Column(name, json_type, prop.get("format"), name in required, prop["description"])
        )
    unknown = required - set(schema["properties"])
    if unknown:
        raise ValueError(f"contract {table}: required columns not declared: {sorted(unknown)}")
    return Contract(table, schema["description"], schema, tuple(columns))


def _with_seed_enums(schema: dict[str, Any]) -> dict[str, Any]:
    """A property's ``x-enum-from-seed: {seed, column}`` becomes its ``enum``, read from the
    seed CSV: the one list of values the warehouse and the quality gates use too."""
    from segmint.reference import seed_values

    for prop in schema["properties"].values():
        source = prop.get("x-enum-from-seed")
        if source:
            prop["enum"] = list(seed_values(source["seed"], source["column"]))
    return schema


@cache
def contracts() -> dict[str, Contract]:
    """All contracts, keyed by raw table name, in load order."""
    found = {}
    for table in TABLES:
        path = CONTRACT_DIR / f"{table}.schema.json"
        schema = _with_seed_enums(json.loads(path.read_text()))
        jsonschema.Draft7Validator.check_schema(schema)
        found[table] = _parse(table, schema)
    return found


@cache
def _compiled(table: str):
    return fastjsonschema.compile(contracts()[table].schema, formats=FORMATS)


@cache
def _explainer(table: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(contracts()[table].schema, format_checker=_format_checker())
