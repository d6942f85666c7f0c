"""Great Expectations suites: one JSON file per validated table in ``expectations/``.

A suite file is GX 1.x suite JSON with segmint's additions in ``meta``::

    {"name": "stg_shop__orders",
     "meta": {"relation": "staging.stg_shop__orders",      # what is validated
              "asset": "staging/stg_shop__orders",         # the Dagster asset it gates
              "key": "order_id",                           # ids of failing rows in results
              "description": "..."},
     "expectations": [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "total_amount", "min_value": 0},
         "meta": {"kind": "invariant"}}, ...]}

Every expectation has a kind (``meta.kind``):

- ``invariant``: always wrong, whatever the business; absolute and blocking from the first
  run. ``"not_after_now": true`` bounds a timestamp column by now plus the tolerance.
- ``distribution``: a metric (row count, null share, mean, stdev, a share) compared with
  the baseline of the expectation's own history; the metric follows from the type, or
  ``meta.metric`` names it.

``meta.query`` validates a derived table instead of the suite's relation (``{relation}``
stands for it), for metrics such as the largest segment share. A value set may name its
one source of truth instead of listing values: ``{"seed": "fx_rates", "column":
"currency_code"}`` (a seed CSV in ``seeds/``) or ``{"contract": "orders", "field":
"status"}`` (the raw-data contract's ``enum``, or its ``x-known-values``).

Severities, tolerances and the values of ``{placeholders}`` in SQL rules live in
``expectations/thresholds.yml`` alone. Adding a suite is adding one file: the Dagster
checks and ``segmint validate`` find it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segmint.config import PROJECT_DIR

SUITES_DIR = PROJECT_DIR / "expectations"
THRESHOLDS_FILE = "thresholds.yml"
KINDS = ("invariant", "distribution")
SEVERITIES = ("blocking", "warning", "off")
# The metric a distribution expectation is baselined on, by expectation type.
METRICS = {
    "expect_table_row_count_to_be_between": "row_count",
    "expect_column_values_to_not_be_null": "null_share",
    "expect_column_mean_to_be_between": "mean",
    "expect_column_stdev_to_be_between": "stdev",
}
TOLERANCE_KEYS = {"min_ratio", "max_ratio", "max_increase", "max_change"}
OVERRIDE_KEYS = {"severity", "tolerance", "vars"}


class SuiteError(ValueError):
    """A suite or thresholds file that cannot be used, with the file and the problem named."""


@dataclass(frozen=True)
class Baseline:
    runs: int = 5
    min_runs: int = 1
    mad_multiplier: float = 3.0


@dataclass(frozen=True)
class Thresholds:
    """The contents of ``expectations/thresholds.yml``."""

    baseline: Baseline = field(default_factory=Baseline)
    severity: dict[str, str] = field(
        default_factory=lambda: {"invariant": "blocking", "distribution": "blocking"}
    )
    future_tolerance_days: float = 1
    tolerances: dict[str, dict[str, float]] = field(default_factory=dict)
    expectations: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    path: Path | None = None


@dataclass(frozen=True)
class ExpectationSpec:
    type: str
    kwargs: dict[str, Any]
    meta: dict[str, Any]
    index: int
    severity: str = "blocking"
    tolerance: dict[str, float] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "invariant")

    @property
    def metric(self) -> str | None:
        if self.kind != "distribution":
            return None
        return self.meta.get("metric") or METRICS.get(self.type)

    @property
    def query(self) -> str | None:
        return self.meta.get("query")

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")

    @property
    def label(self) -> str:
        """Stable name of the expectation within its suite, for messages and history."""
        name = self.meta.get("name")
        if name:
            return name
        return f"{self.type}({self.column})" if self.column else self.type


@dataclass(frozen=True)
class Suite:
    name: str
    relation: str
    asset: str
    key: str | None
    description: str
    expectations: list[ExpectationSpec] = field(default_factory=list)
    path: Path | None = None
    baseline: Baseline = field(default_factory=Baseline)

    @property
    def blocking(self) -> bool:
        return any(e.severity == "blocking" for e in self.expectations)

    @property
    def row_count(self) -> ExpectationSpec | None:
        return next((e for e in self.expectations if e.metric == "row_count"), None)


# ---------------------------------------------------------------------------------------
# thresholds.yml


def load_thresholds(path: Path | None = None) -> Thresholds:
    path = path or SUITES_DIR / THRESHOLDS_FILE
    if not path.exists():
        return Thresholds(path=None)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML ({exc})") from exc
    unknown = set(doc) - {
        "baseline",
        "severity",
        "future_tolerance_days",
        "tolerances",
        "expectations",
    }
    if unknown:
        raise SuiteError(f"{path}: unknown settings {sorted(unknown)}")
    try:
        baseline = Baseline(**(doc.get("baseline") or {}))
    except TypeError as exc:
        raise SuiteError(f"{path}: baseline: {exc}") from exc
    if baseline.runs < 1 or baseline.min_runs < 0 or baseline.mad_multiplier < 0:
        raise SuiteError(f"{path}: baseline: runs >= 1, min_runs >= 0, mad_multiplier >= 0")
    severity = {"invariant": "blocking", "distribution": "blocking", **(doc.get("severity") or {})}
    for kind, value in severity.items():
        if kind not in KINDS or value not in SEVERITIES:
            raise SuiteError(
                f"{path}: severity.{kind}: {value!r} (kinds {KINDS}, severities {SEVERITIES})"
            )
    tolerances = doc.get("tolerances") or {}
    for metric, tolerance in tolerances.items():
        _check_tolerance(path, f"tolerances.{metric}", tolerance)
    expectations = doc.get("expectations") or {}
    for suite, entries in expectations.items():
        for label, override in (entries or {}).items():
            where = f"expectations.{suite}.{label}"
            if not isinstance(override, dict) or set(override) - OVERRIDE_KEYS:
                raise SuiteError(f"{path}: {where}: only {sorted(OVERRIDE_KEYS)} may be set")
            if "severity" in override and override["severity"] not in SEVERITIES:
                raise SuiteError(f"{path}: {where}.severity must be one of {SEVERITIES}")
            if "tolerance" in override:
                _check_tolerance(path, f"{where}.tolerance", override["tolerance"])
    return Thresholds(
        baseline=baseline,
        severity=severity,
        future_tolerance_days=float(doc.get("future_tolerance_days", 1)),
        tolerances=tolerances,
        expectations=expectations,
        path=path,
    )


def _check_tolerance(path: Path, where: str, tolerance: Any) -> None:
    if not isinstance(tolerance, dict) or not tolerance or set(tolerance) - TOLERANCE_KEYS:
        raise SuiteError(f"{path}: {where}: a mapping of {sorted(TOLERANCE_KEYS)}")
    if not all(isinstance(v, int | float) and v >= 0 for v in tolerance.values()):
        raise SuiteError(f"{path}: {where}: tolerances are numbers >= 0")


# ---------------------------------------------------------------------------------------
# Value sets from their one source of truth


def value_set(source: dict[str, str], where: str) -> tuple[list[str], str]:
    """The values of a seed column or a contract field, and the file that defines them."""
    if set(source) == {"seed", "column"}:
        from segmint.reference import seed_path, seed_values

        try:
            values = seed_values(source["seed"], source["column"])
        except (FileNotFoundError, KeyError) as exc:
            raise SuiteError(f"{where}: value_set: {exc}") from exc
        return sorted(values), f"seeds/{seed_path(source['seed']).name}"
    if set(source) == {"contract", "field"}:
        from segmint.contracts import CONTRACT_DIR, contracts

        contract = contracts().get(source["contract"])
        if contract is None:
            raise SuiteError(f"{where}: value_set names unknown contract {source['contract']!r}")
        prop = contract.schema["properties"].get(source["field"], {})
        values = prop.get("enum") or prop.get("x-known-values")
        if not values:
            raise SuiteError(
                f"{where}: contract {source['contract']} field {source['field']!r} "
                "has no enum or x-known-values"
            )
        path = CONTRACT_DIR / f"{source['contract']}.schema.json"
        return list(values), f"segmint/contracts/{path.name}"
    raise SuiteError(
        f"{where}: value_set is a list, {{'seed', 'column'}} or {{'contract', 'field'}}"
    )


# ---------------------------------------------------------------------------------------
# Suites


def load_suite(path: Path, thresholds: Thresholds | None = None) -> Suite:
    thresholds = thresholds or Thresholds()
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON ({exc})") from exc
    meta = doc.get("meta", {})
    for required in ("relation", "asset"):
        if not meta.get(required):
            raise SuiteError(f"{path}: meta.{required} is required")
    name = doc.get("name") or path.stem
    overrides = thresholds.expectations.get(name, {})
    specs = []
    for i, raw in enumerate(doc.get("expectations", [])):
        where = f"{path}: expectations[{i}] ({raw.get('type')})"
        exp_meta = dict(raw.get("meta", {}))
        if exp_meta.get("kind") not in KINDS:
            raise SuiteError(f"{where}: meta.kind must be one of {', '.join(KINDS)}")
        if "severity" in exp_meta:
            raise SuiteError(f"{where}: severities belong in {THRESHOLDS_FILE}, not the suite")
        kwargs = dict(raw.get("kwargs", {}))
        if isinstance(kwargs.get("value_set"), dict):
            kwargs["value_set"], exp_meta["values_from"] = value_set(kwargs["value_set"], where)
        spec = ExpectationSpec(raw["type"], kwargs, exp_meta, i)
        if spec.kind == "distribution" and spec.metric is None:
            raise SuiteError(f"{where}: a distribution expectation needs meta.metric")
        override = overrides.get(spec.label, {})
        severity = override.get("severity", thresholds.severity[spec.kind])
        tolerance = override.get("tolerance") or thresholds.tolerances.get(spec.metric or "", {})
        if spec.kind == "distribution" and not tolerance:
            raise SuiteError(f"{where}: no tolerance for metric {spec.metric!r} in thresholds")
        variables = override.get("vars", {})
        exp_meta["vars"] = variables
        if exp_meta.get("not_after_now"):
            exp_meta["not_after_now_days"] = thresholds.future_tolerance_days
        for text in (kwargs.get("unexpected_rows_query", ""), spec.query or ""):
            for var in _placeholders(text) - {"batch", "relation"} - set(variables):
                raise SuiteError(f"{where}: {{{var}}} has no value in {THRESHOLDS_FILE}")
        specs.append(ExpectationSpec(raw["type"], kwargs, exp_meta, i, severity, dict(tolerance)))
    if not specs:
        raise SuiteError(f"{path}: no expectations")
    labels = [s.label for s in specs]
    duplicates = {label for label in labels if labels.count(label) > 1}
    if duplicates:
        raise SuiteError(f"{path}: give these expectations a distinct meta.name: {duplicates}")
    unknown = set(overrides) - set(labels)
    if unknown:
        raise SuiteError(
            f"{thresholds.path}: expectations.{name} names no expectation of the suite: "
            f"{sorted(unknown)} (known: {labels})"
        )
    return Suite(
        name=name,
        relation=meta["relation"],
        asset=meta["asset"],
        key=meta.get("key"),
        description=meta.get("description", ""),
        expectations=[s for s in specs if s.severity != "off"],
        path=path,
        baseline=thresholds.baseline,
    )


def _placeholders(text: str) -> set[str]:
    import string

    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def load_suites(directory: Path = SUITES_DIR) -> list[Suite]:
    thresholds = load_thresholds(directory / THRESHOLDS_FILE)
    suites = [load_suite(p, thresholds) for p in sorted(directory.glob("*.json"))]
    names = [s.name for s in suites]
    if len(set(names)) != len(names):
        raise SuiteError(f"{directory}: two suites share a name")
    unknown = set(thresholds.expectations) - set(names)
    if unknown:
        raise SuiteError(f"{thresholds.path}: expectations names unknown suites {sorted(unknown)}")
    return suites
