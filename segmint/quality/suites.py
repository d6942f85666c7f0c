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
         "meta": {"severity": "blocking"}}, ...]}

Every expectation has a severity, ``blocking`` or ``warning``. Bounds that depend on the
run are given in ``meta`` and resolved by segmint before GX sees the expectation:

- ``"previous_run": {"min_ratio": 0.5, "max_ratio": 10}``: min/max_value are the ratios
  times the value observed at the last run that passed (row counts, means: drift); no
  bound on the first run.
- ``"not_after_now_days": 1``: max_value is now plus that many days (timestamps).
- ``"vars": {"max_share": 0.8}``: ``{max_share}`` in a query is replaced by the value.

Adding a suite is adding one file: the Dagster checks and ``segmint validate`` find it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segmint.config import PROJECT_DIR

SUITES_DIR = PROJECT_DIR / "expectations"
SEVERITIES = ("blocking", "warning")


class SuiteError(ValueError):
    """A suite file that cannot be used, with the file and the problem named."""


@dataclass(frozen=True)
class ExpectationSpec:
    type: str
    kwargs: dict[str, Any]
    meta: dict[str, Any]
    index: int

    @property
    def severity(self) -> str:
        return self.meta["severity"]

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

    @property
    def blocking(self) -> bool:
        return any(e.severity == "blocking" for e in self.expectations)


def load_suite(path: Path) -> Suite:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON ({exc})") from exc
    meta = doc.get("meta", {})
    for required in ("relation", "asset"):
        if not meta.get(required):
            raise SuiteError(f"{path}: meta.{required} is required")
    specs = []
    for i, raw in enumerate(doc.get("expectations", [])):
        exp_meta = raw.get("meta", {})
        if exp_meta.get("severity") not in SEVERITIES:
            raise SuiteError(
                f"{path}: expectations[{i}] ({raw.get('type')}): meta.severity must be one of "
                f"{', '.join(SEVERITIES)}"
            )
        specs.append(ExpectationSpec(raw["type"], dict(raw.get("kwargs", {})), exp_meta, i))
    if not specs:
        raise SuiteError(f"{path}: no expectations")
    labels = [s.label for s in specs]
    duplicates = {label for label in labels if labels.count(label) > 1}
    if duplicates:
        raise SuiteError(f"{path}: give these expectations a distinct meta.name: {duplicates}")
    return Suite(
        name=doc.get("name") or path.stem,
        relation=meta["relation"],
        asset=meta["asset"],
        key=meta.get("key"),
        description=meta.get("description", ""),
        expectations=specs,
        path=path,
    )


def load_suites(directory: Path = SUITES_DIR) -> list[Suite]:
    suites = [load_suite(p) for p in sorted(directory.glob("*.json"))]
    names = [s.name for s in suites]
    if len(set(names)) != len(names):
        raise SuiteError(f"{directory}: two suites share a name")
    return suites
