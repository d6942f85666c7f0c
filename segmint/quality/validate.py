"""Run the suites in the warehouse with Great Expectations, through SQL.

Each suite validates ``select * from <relation>`` (and, for expectations with
``meta.query``, that derived table) as a GX query asset on a SQLAlchemy connection to the
warehouse. Results come back per expectation with the severity, observed value,
unexpected count and a sample of failing rows (their keys and values).

Run-dependent bounds are resolved before GX sees an expectation:

- distribution expectations are bounded by a band around the baseline, the values the
  expectation observed in its last passing runs (``quality.expectation_observations``);
  with too short a history the value is only recorded;
- timestamps marked ``not_after_now`` are bounded by now plus the tolerance.

A suite whose relation is empty, and has never had rows, is skipped visibly: the source is
absent, which is normal. A relation that had rows and is now empty is a volume drop, and
its row-count expectation fails. GX Data Docs are written to a folder when asked.
"""

from __future__ import annotations

import gc
import json
import logging
import statistics
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from segmint import tables
from segmint.quality import gx_duckdb
from segmint.quality.suites import Baseline, ExpectationSpec, Suite, load_suites

OBSERVATIONS = "quality.expectation_observations"
ROWS = "__rows__"  # the observation that records a relation's row count at every run
SAMPLE_SIZE = 5
SKIPPED_EMPTY = "source empty: skipped"


@dataclass
class Outcome:
    suite: str
    relation: str
    expectation: str
    severity: str
    success: bool
    kind: str = "invariant"
    observed_value: Any = None
    metric_value: float | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    sample: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None
    values_from: str | None = None

    def describe(self) -> str:
        parts = [f"{self.relation}: {self.expectation} [{self.severity}, {self.kind}]"]
        if self.error:
            parts.append(f"error: {self.error}")
        if self.observed_value is not None:
            parts.append(f"observed {self.observed_value}")
        if self.unexpected_count:
            pct = f" ({self.unexpected_percent:.1f}%)" if self.unexpected_percent else ""
            parts.append(f"{self.unexpected_count} unexpected{pct}")
        bounds = {
            k: v
            for k, v in self.kwargs.items()
            if k not in ("column", "result_format", "unexpected_rows_query")
            and not (k == "value_set" and self.values_from)
        }
        if bounds:
            parts.append(f"expected {json.dumps(bounds, default=str)}")
        if self.values_from:
            parts.append(f"allowed values come from {self.values_from}: add the value there")
        if self.note:
            parts.append(self.note)
        if self.sample:
            parts.append(f"e.g. {json.dumps(self.sample[:SAMPLE_SIZE], default=str)}")
        return "; ".join(parts)


@dataclass
class SuiteResult:
    suite: Suite
    outcomes: list[Outcome]
    rows: int | None = None
    skipped: str | None = None

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
# History and bounds that depend on the run


@dataclass(frozen=True)
class History:
    """What earlier runs observed for one suite: accepted values per expectation, rows."""

    values: dict[str, list[float]] = field(default_factory=dict)  # newest first
    rows: list[float] = field(default_factory=list)  # the relation's rows, newest first

    @property
    def ever_had_rows(self) -> bool:
        return any(r > 0 for r in self.rows)


def _history(con, suite: Suite, columns: list[str]) -> History:
    if not columns:
        return History()
    accepted = "coalesce(accepted, success)" if "accepted" in columns else "success"
    rows = con.execute(
        f"""
        select expectation, observed_value from {OBSERVATIONS}
        where suite = ? and {accepted} and observed_value is not null
        qualify row_number() over (partition by expectation order by observed_at desc) <= ?
        order by expectation, observed_at desc
        """,
        [suite.name, suite.baseline.runs],
    ).fetchall()
    values: dict[str, list[float]] = {}
    for expectation, value in rows:
        values.setdefault(expectation, []).append(value)
    return History(values=values, rows=values.pop(ROWS, []))


def _row_count(con, relation: str) -> int | None:
    """Rows of the relation; None when it does not exist."""
    schema, _, name = relation.rpartition(".")
    if not tables.exists(con, schema or "main", name):
        return None
    return con.execute(f"select count(*) from {relation}").fetchall()[0][0]


def band(
    history: list[float], tolerance: dict[str, float], mad_multiplier: float
) -> tuple[float | None, float | None]:
    """(low, high) around the history's median; None is unbounded on that side.

    The tolerance sets the band (ratios of the median, or absolute changes of a share);
    the band is at least ``mad_multiplier`` robust standard deviations wide, so a metric
    that has always moved a lot is not flagged for moving as much again.
    """
    median = statistics.median(history)
    spread = mad_multiplier * 1.4826 * statistics.median(abs(v - median) for v in history)
    low = high = None
    if "min_ratio" in tolerance:
        low = median * tolerance["min_ratio"]
    if "max_ratio" in tolerance and median > 0:  # from zero, any growth is new, not drift
        high = median * tolerance["max_ratio"]
    if "max_change" in tolerance:
        low, high = median - tolerance["max_change"], median + tolerance["max_change"]
    if "max_increase" in tolerance:
        high = median + tolerance["max_increase"]
    if low is not None and high is not None and low > high:  # ratios of a negative median
        low, high = high, low
    if low is not None:
        low = min(low, median - spread)
    if high is not None:
        high = max(high, median + spread)
    return low, high


def resolve_kwargs(
    spec: ExpectationSpec, history: list[float], now: datetime, baseline: Baseline | None = None
) -> tuple[dict[str, Any], str | None]:
    """GX kwargs with the run-dependent bounds, and a note on the baseline used."""
    baseline = baseline or Baseline()
    kwargs = dict(spec.kwargs)
    note = None
    if spec.kind == "distribution":
        if len(history) < max(baseline.min_runs, 1):
            note = f"no baseline yet ({len(history)} earlier runs): value recorded, not checked"
            if spec.metric == "null_share":
                kwargs["mostly"] = 0.0
        else:
            low, high = band(history, spec.tolerance, baseline.mad_multiplier)
            if spec.metric == "null_share":
                kwargs["mostly"] = 1.0 - min(1.0, high) if high is not None else 0.0
            else:
                if low is not None:
                    kwargs["min_value"] = max(kwargs.get("min_value", float("-inf")), low)
                if high is not None:
                    kwargs["max_value"] = high
            note = (
                f"baseline: median {statistics.median(history):.6g} "
                f"of the last {len(history)} passing runs"
            )
    days = spec.meta.get("not_after_now_days")
    if days is not None:
        kwargs["max_value"] = (now + timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
    for name, value in spec.meta.get("vars", {}).items():
        if "unexpected_rows_query" in kwargs:
            kwargs["unexpected_rows_query"] = kwargs["unexpected_rows_query"].replace(
                "{" + name + "}", str(value)
            )
    return kwargs, note


# ---------------------------------------------------------------------------------------
# Running GX


def _expectation(spec: ExpectationSpec, kwargs: dict[str, Any]):
    from great_expectations.expectations.registry import get_expectation_impl

    meta = {k: v for k, v in spec.meta.items() if k != "query"}
    return get_expectation_impl(spec.type)(
        **kwargs, meta={**meta, "severity": spec.severity, "label": spec.label}
    )


REDACTED = "<personal data>"


def redact_sample(sample: list[Any], column: str | None) -> list[Any]:
    """Failing-row samples go to the Dagster event log, which cannot be erased: values of
    personal columns (segmint.privacy.PERSONAL_COLUMNS) are replaced, keys are kept."""
    from segmint.privacy import PERSONAL_COLUMNS

    def personal(name, value) -> bool:  # by column, or an email anywhere in a value
        return name in PERSONAL_COLUMNS or (isinstance(value, str) and "@" in value)

    out = []
    for item in sample:
        if isinstance(item, dict):
            out.append({k: REDACTED if personal(k, v) else v for k, v in item.items()})
        else:
            out.append(REDACTED if personal(column, item) else item)
    return out


def _metric_value(spec: ExpectationSpec, res: dict[str, Any]) -> float | None:
    """The value a distribution expectation is baselined on."""
    if spec.metric == "null_share":
        total = res.get("element_count")
        return (res.get("unexpected_count") or 0) / total if total else None
    return _as_float(res.get("observed_value"))


def _outcome(suite: Suite, spec: ExpectationSpec, kwargs: dict, result, note) -> Outcome:
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
    sample = redact_sample(sample, kwargs.get("column"))
    observed = res.get("observed_value")
    unexpected = res.get("unexpected_count")
    if spec.type == "unexpected_rows_expectation":
        unexpected = observed
    metric = _metric_value(spec, res) if spec.kind == "distribution" else _as_float(observed)
    if spec.metric == "null_share" and metric is not None:
        observed = f"null share {metric:.3f}"
    return Outcome(
        suite=suite.name,
        relation=suite.relation,
        expectation=spec.label,
        severity=spec.severity,
        success=bool(result.success) and error is None,
        kind=spec.kind,
        observed_value=observed,
        metric_value=metric,
        unexpected_count=unexpected,
        unexpected_percent=res.get("unexpected_percent"),
        sample=sample,
        kwargs=kwargs,
        error=error,
        note=note,
        values_from=spec.meta.get("values_from"),
    )


def validate(
    warehouse,
    suites: list[Suite] | None = None,
    docs_dir: Path | None = None,
    now: datetime | None = None,
    record: bool = True,
    accept: bool = False,
) -> list[SuiteResult]:
    """Validate the suites against the warehouse; record observations; build Data Docs.

    ``warehouse``: a warehouse object (segmint.warehouse, segmint.snowflake) or the path of a
    DuckDB file. ``accept`` records this run's distribution values as a passing baseline
    whatever their verdict: how a user accepts a change in the business as the new normal.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if isinstance(warehouse, str | Path):
        from segmint.warehouse import DuckDBWarehouse

        warehouse = DuckDBWarehouse(Path(warehouse))
    gx_duckdb.apply()
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    suites = load_suites() if suites is None else suites
    now = now or datetime.now(UTC).replace(tzinfo=None)
    # Read history and volumes before GX opens its own (read-only) connection to the file.
    with warehouse.connect(read_only=True, step="quality") as con:
        columns = tables.columns(con, *OBSERVATIONS.split("."))
        histories = {s.name: _history(con, s, columns) for s in suites}
        volumes = {s.name: _row_count(con, s.relation) for s in suites}
    results: list[SuiteResult] = []
    to_run = []
    for suite in suites:
        rows = volumes[suite.name]
        if not rows and not histories[suite.name].ever_had_rows:
            results.append(SuiteResult(suite, [], rows=rows or 0, skipped=SKIPPED_EMPTY))
        else:
            to_run.append(suite)
    context = _context(docs_dir)
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
    connection_string, engine_kwargs = warehouse.sqlalchemy()
    with warnings.catch_warnings():
        # One generic SQL source serves both warehouses, on purpose.
        warnings.filterwarnings("ignore", message="You are using a generic SQLDatasource")
        source = context.data_sources.add_sql(
            name="warehouse", connection_string=connection_string, kwargs=engine_kwargs
        )
    rendered: list = []  # what this call renders into Data Docs
    try:
        for suite in to_run:
            history = histories[suite.name]
            resolved = {
                spec.label: (spec, *resolve_kwargs(spec, history.values.get(spec.label, []),
                                                   now, suite.baseline))
                for spec in suite.expectations
            }  # fmt: skip
            by_label = {}
            groups: dict[str | None, list[ExpectationSpec]] = {}
            for spec in suite.expectations:
                groups.setdefault(spec.query, []).append(spec)
            for n, (query, specs) in enumerate(groups.items()):
                name = suite.name if n == 0 else f"{suite.name}__{n}"
                sql = (query or "select * from {relation}").replace("{relation}", suite.relation)
                gx_suite = context.suites.add_or_update(
                    gx.ExpectationSuite(
                        name=name,
                        expectations=[_expectation(s, resolved[s.label][1]) for s in specs],
                        meta={"relation": suite.relation, "description": suite.description},
                    )
                )
                asset = source.add_query_asset(name=name, query=sql)
                definition = context.validation_definitions.add(
                    gx.ValidationDefinition(
                        name=name,
                        data=asset.add_batch_definition_whole_table("all"),
                        suite=gx_suite,
                    )
                )
                result_format: dict[str, Any] = {
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": SAMPLE_SIZE,
                }
                if suite.key and query is None:
                    result_format["unexpected_index_column_names"] = [suite.key]
                checkpoint = context.checkpoints.add(
                    gx.Checkpoint(
                        name=f"{name}_checkpoint",
                        validation_definitions=[definition],
                        actions=[],
                        result_format=result_format,
                    )
                )
                ((identifier, validation),) = checkpoint.run().run_results.items()
                rendered += [identifier, identifier.expectation_suite_identifier]
                by_label.update(
                    {r.expectation_config.meta.get("label"): r for r in validation.results}
                )
            outcomes = [
                _outcome(suite, spec, kwargs, by_label[label], note)
                for label, (spec, kwargs, note) in resolved.items()
            ]
            for o in outcomes:
                if o.kind == "distribution" and o.metric_value is None and o.error is None:
                    # No value at all (a feature this business lacks): nothing to compare
                    # unless the baseline had one, in which case the values vanished.
                    o.success = not history.values.get(o.expectation)
                    o.note = "no value in this run" + (
                        "" if o.success else "; the baseline had one"
                    )
            results.append(SuiteResult(suite, outcomes, rows=volumes[suite.name]))
        if docs_dir is not None and to_run:
            # The pages of this call's suites and results, once (not once per checkpoint);
            # the index lists every result kept, whichever step or call wrote it.
            _forget_old_results(context)
            context.build_data_docs(site_names=["segmint"], resource_identifiers=rendered)
    finally:
        gx_duckdb.close(source)
        del source, context
        gc.collect()
    order = {s.name: i for i, s in enumerate(suites)}
    results.sort(key=lambda r: order[r.suite.name])
    if record:
        _record(warehouse, results, now, accept)
    return results


# Validation results kept for Data Docs, per suite: its last runs (older ones and their pages
# are removed when a step builds the docs).
DOCS_RUNS_KEPT = 10


def _context(docs_dir: Path | None):
    """An ephemeral GX context. With Data Docs, its suites and validation results are kept
    as files under ``docs_dir/.gx``: every quality step of a run (one context each) adds its
    own, and the index of the site lists them all, not only the last step's."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
    )

    if docs_dir is None:
        return gx.get_context(mode="ephemeral")
    defaults = InMemoryStoreBackendDefaults()
    config = DataContextConfig(store_backend_defaults=defaults)
    kept = Path(docs_dir).resolve() / ".gx"
    stores = (
        (defaults.expectations_store_name, "ExpectationsStore"),
        (defaults.validation_results_store_name, "ValidationResultsStore"),
    )
    for store, kind in stores:
        config.stores[store] = {
            "class_name": kind,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(kept / kind),
            },
        }
    return gx.get_context(project_config=config, mode="ephemeral")


def _forget_old_results(context) -> None:
    """Keep the last DOCS_RUNS_KEPT validation results of each suite; Data Docs then removes
    the pages of the others."""
    store = context.stores[context.validation_results_store_name]
    by_suite: dict[str, list] = {}
    for key in store.list_keys():
        by_suite.setdefault(key.expectation_suite_identifier.name, []).append(key)
    for keys in by_suite.values():
        keys.sort(key=lambda k: k.run_id.run_time, reverse=True)
        for key in keys[DOCS_RUNS_KEPT:]:
            store.remove_key(key)


def _record(warehouse, results: list[SuiteResult], now: datetime, accept: bool) -> None:
    """Append this run's observations; ``accepted`` ones form later baselines."""
    run_id = uuid.uuid4().hex
    rows = []
    for r in results:
        rows.append((r.suite.name, ROWS, float(r.rows or 0), True, True, run_id, now))
        for o in r.outcomes:
            accepted = o.success or o.severity == "warning" or (accept and o.error is None)
            rows.append((o.suite, o.expectation, o.metric_value, o.success, accepted, run_id, now))
    import pandas as pd

    frame = pd.DataFrame(
        rows,
        columns=["suite", "expectation", "observed_value", "success", "accepted", "run_id",
                 "observed_at"],
    )  # fmt: skip
    with warehouse.connect(step="quality") as con:
        con.execute("create schema if not exists quality")
        con.execute(
            f"""
            create table if not exists {OBSERVATIONS} (
                suite varchar, expectation varchar, observed_value double,
                success boolean, run_id varchar, observed_at timestamp
            )
            """
        )
        con.execute(f"alter table {OBSERVATIONS} add column if not exists accepted boolean")
        tables.insert_frame(con, OBSERVATIONS, frame)


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None
