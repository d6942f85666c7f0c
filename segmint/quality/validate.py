"""Run the suites in the warehouse with Great Expectations, through SQL.

Each suite validates ``select * from <relation>`` as a GX query asset on a SQLAlchemy
connection to the warehouse (DuckDB here; the same suites would run on Snowflake through its
SQLAlchemy URL). Results come back per expectation with the severity, observed value,
unexpected count and a sample of failing rows (their keys and values). Observed values are
kept in ``quality.expectation_observations`` so the next run can bound row counts and means
against this one. GX Data Docs are written to a folder when asked.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from segmint.config import PROJECT_DIR
from segmint.quality import gx_duckdb
from segmint.quality.suites import ExpectationSpec, Suite, load_suites

DOCS_DIR = Path(os.environ.get("SEGMINT_DATA_DOCS_DIR", PROJECT_DIR / "data_docs"))
OBSERVATIONS = "quality.expectation_observations"
SAMPLE_SIZE = 5


@dataclass
class Outcome:
    suite: str
    relation: str
    expectation: str
    severity: str
    success: bool
    observed_value: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def describe(self) -> str:
        parts = [f"{self.relation}: {self.expectation} [{self.severity}]"]
        if self.error:
            parts.append(f"error: {self.error}")
        if self.observed_value is not None:
            parts.append(f"observed {self.observed_value}")
        if self.unexpected_count:
            pct = f" ({self.unexpected_percent:.1f}%)" if self.unexpected_percent else ""
            parts.append(f"{self.unexpected_count} unexpected{pct}")
        bounds = {k: v for k, v in self.kwargs.items() if k not in ("column", "result_format")}
        if bounds:
            parts.append(f"expected {json.dumps(bounds, default=str)}")
        if self.sample:
            parts.append(f"e.g. {json.dumps(self.sample[:SAMPLE_SIZE], default=str)}")
        return "; ".join(parts)


@dataclass
class SuiteResult:
    suite: Suite
    outcomes: list[Outcome]

    @property
    def blocking_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "blocking"]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    @property
    def passed(self) -> bool:
        return not self.blocking_failures


# ---------------------------------------------------------------------------------------
# Bounds that depend on the run


def _previous_values(duckdb_path: Path, suite: str) -> dict[str, float]:
    """Last value observed when each expectation of the suite passed."""
    if not duckdb_path.exists():
        return {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'quality' and table_name = 'expectation_observations'"
        ).fetchall()[0][0]
        if not exists:
            return {}
        rows = con.execute(
            f"""
            select expectation, observed_value from {OBSERVATIONS}
            where suite = ? and success and observed_value is not null
            qualify row_number() over (partition by expectation order by observed_at desc) = 1
            """,
            [suite],
        ).fetchall()
    return dict(rows)


def resolve_kwargs(
    spec: ExpectationSpec, previous: dict[str, float], now: datetime
) -> dict[str, Any]:
    kwargs = dict(spec.kwargs)
    ratios = spec.meta.get("previous_run")
    if ratios and spec.label in previous:
        base = previous[spec.label]
        if "min_ratio" in ratios:
            kwargs["min_value"] = max(
                kwargs.get("min_value", float("-inf")), base * ratios["min_ratio"]
            )
        if "max_ratio" in ratios:
            kwargs["max_value"] = base * ratios["max_ratio"]
    days = spec.meta.get("not_after_now_days")
    if days is not None:
        kwargs["max_value"] = (now + timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
    for name, value in spec.meta.get("vars", {}).items():
        if "unexpected_rows_query" in kwargs:
            kwargs["unexpected_rows_query"] = kwargs["unexpected_rows_query"].replace(
                "{" + name + "}", str(value)
            )
    return kwargs


# ---------------------------------------------------------------------------------------
# Running GX


def _expectation(spec: ExpectationSpec, kwargs: dict[str, Any]):
    from great_expectations.expectations.registry import get_expectation_impl

    return get_expectation_impl(spec.type)(**kwargs, meta={**spec.meta, "label": spec.label})


def _outcome(suite: Suite, spec: ExpectationSpec, kwargs: dict, result) -> Outcome:
    res = result.result or {}
    info = result.exception_info or {}
    error = None
    if info.get("raised_exception"):
        error = (info.get("exception_message") or "").splitlines()[0][:300]
    elif any(isinstance(v, dict) and v.get("raised_exception") for v in info.values()):
        first = next(v for v in info.values() if isinstance(v, dict) and v.get("raised_exception"))
        error = (first.get("exception_message") or "").splitlines()[0][:300]
    sample: list[Any] = []
    if res.get("partial_unexpected_index_list"):
        sample = res["partial_unexpected_index_list"][:SAMPLE_SIZE]
    elif res.get("partial_unexpected_list"):
        sample = res["partial_unexpected_list"][:SAMPLE_SIZE]
    elif isinstance(res.get("details"), dict) and res["details"].get("unexpected_rows"):
        sample = res["details"]["unexpected_rows"][:SAMPLE_SIZE]
    observed = res.get("observed_value")
    unexpected = res.get("unexpected_count")
    if spec.type == "unexpected_rows_expectation":
        unexpected = observed
    return Outcome(
        suite=suite.name,
        relation=suite.relation,
        expectation=spec.label,
        severity=spec.severity,
        success=bool(result.success) and error is None,
        observed_value=observed,
        unexpected_count=unexpected,
        unexpected_percent=res.get("unexpected_percent"),
        sample=sample,
        kwargs=kwargs,
        error=error,
    )


def validate(
    duckdb_path: Path,
    suites: list[Suite] | None = None,
    docs_dir: Path | None = None,
    now: datetime | None = None,
    record: bool = True,
) -> list[SuiteResult]:
    """Validate the suites against the warehouse; record observations; build Data Docs."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    gx_duckdb.apply()
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    suites = load_suites() if suites is None else suites
    now = now or datetime.now(UTC).replace(tzinfo=None)
    # Read history before GX opens its own (read-only) connection to the file.
    history = {s.name: _previous_values(duckdb_path, s.name) for s in suites}
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="segmint",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(docs_dir).resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    source = context.data_sources.add_sql(
        name="warehouse",
        connection_string=f"duckdb:///{Path(duckdb_path).resolve()}",
        kwargs={"connect_args": {"read_only": True}},
    )
    results: list[SuiteResult] = []
    try:
        for suite in suites:
            previous = history[suite.name]
            resolved = [(spec, resolve_kwargs(spec, previous, now)) for spec in suite.expectations]
            gx_suite = context.suites.add(
                gx.ExpectationSuite(
                    name=suite.name,
                    expectations=[_expectation(spec, kw) for spec, kw in resolved],
                    meta={"relation": suite.relation, "description": suite.description},
                )
            )
            asset = source.add_query_asset(name=suite.name, query=f"select * from {suite.relation}")
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=suite.name,
                    data=asset.add_batch_definition_whole_table("all"),
                    suite=gx_suite,
                )
            )
            result_format: dict[str, Any] = {
                "result_format": "SUMMARY",
                "partial_unexpected_count": SAMPLE_SIZE,
            }
            if suite.key:
                result_format["unexpected_index_column_names"] = [suite.key]
            actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if docs_dir else []
            checkpoint = context.checkpoints.add(
                gx.Checkpoint(
                    name=f"{suite.name}_checkpoint",
                    validation_definitions=[definition],
                    actions=actions,
                    result_format=result_format,
                )
            )
            run = checkpoint.run()
            (validation,) = run.run_results.values()
            by_label = {r.expectation_config.meta.get("label"): r for r in validation.results}
            outcomes = [_outcome(suite, spec, kw, by_label[spec.label]) for spec, kw in resolved]
            results.append(SuiteResult(suite, outcomes))
    finally:
        gx_duckdb.close(source)
        del source, context
        gc.collect()
    if record:
        _record(duckdb_path, results, now)
    return results


def _record(duckdb_path: Path, results: list[SuiteResult], now: datetime) -> None:
    run_id = uuid.uuid4().hex
    rows = [
        (o.suite, o.expectation, _as_float(o.observed_value), o.success, run_id, now)
        for r in results
        for o in r.outcomes
    ]
    with duckdb.connect(str(duckdb_path)) as con:
        con.execute("create schema if not exists quality")
        con.execute(
            f"""
            create table if not exists {OBSERVATIONS} (
                suite varchar, expectation varchar, observed_value double,
                success boolean, run_id varchar, observed_at timestamp
            )
            """
        )
        con.executemany(f"insert into {OBSERVATIONS} values (?, ?, ?, ?, ?, ?)", rows)


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None
