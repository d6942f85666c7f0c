"""Great Expectations suites as Dagster asset checks: one check per suite file.

A suite with a blocking expectation is a blocking check: when one of its blocking
expectations fails, the check fails with severity ERROR and Dagster skips everything
downstream of the asset (the dbt steps after it, the segment history, and what follows).
Failed warning expectations fail the check with severity WARN and stop nothing.
"""

import json

import dagster as dg

from orchestration.defs.resources import WarehouseResource
from segmint.quality.suites import Suite, load_suites
from segmint.quality.validate import DOCS_DIR, SuiteResult, validate


def _metadata(result: SuiteResult) -> dict[str, dg.MetadataValue]:
    rows = [
        "| expectation | kind | severity | passed | observed | unexpected | baseline | sample |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in result.outcomes:
        observed = "" if o.observed_value is None else str(o.observed_value)[:60]
        unexpected = "" if o.unexpected_count is None else str(o.unexpected_count)
        sample = ", ".join(str(v) for v in o.sample)[:120].replace("|", "/")
        mark = "yes" if o.success else "**NO**"
        note = (o.note or "")[:80]
        rows.append(
            f"| {o.expectation} | {o.kind} | {o.severity} | {mark} | {observed} | {unexpected} "
            f"| {note} | {sample} |"
        )
    failed = [o for o in result.outcomes if not o.success]
    return {
        "relation": dg.MetadataValue.text(result.suite.relation),
        "rows": dg.MetadataValue.int(result.rows or 0),
        "expectations": dg.MetadataValue.md("\n".join(rows)),
        "failed": _json(
            [
                {
                    "expectation": o.expectation,
                    "severity": o.severity,
                    "observed_value": o.observed_value,
                    "unexpected_count": o.unexpected_count,
                    "sample": o.sample,
                    "expected": {k: v for k, v in o.kwargs.items() if k != "column"},
                    "error": o.error,
                }
                for o in failed
            ]
        ),
        "data_docs": dg.MetadataValue.path(str(DOCS_DIR / "index.html")),
    }


def _json(data) -> dg.MetadataValue:
    """Warehouse values (decimals, dates) as JSON metadata."""
    return dg.MetadataValue.json(json.loads(json.dumps(data, default=str)))


def _check_for(suite: Suite) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(suite.asset.split("/")),
        name=f"gx_{suite.name}",
        blocking=suite.blocking,
        description=f"Great Expectations suite expectations/{suite.path.name}: {suite.description}",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        (result,) = validate(warehouse.duckdb, [suite], docs_dir=DOCS_DIR)
        if result.skipped:
            return dg.AssetCheckResult(
                passed=True,
                description=f"{suite.relation}: {result.skipped} (the source has never had rows)",
                metadata={
                    "relation": dg.MetadataValue.text(suite.relation),
                    "rows": dg.MetadataValue.int(0),
                    "skipped": dg.MetadataValue.text(result.skipped),
                },
            )
        if result.blocking_failures:
            names = "; ".join(o.describe() for o in result.blocking_failures)
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"blocking expectations failed on {suite.relation}: {names}"[:2000],
                metadata=_metadata(result),
            )
        if result.warnings:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"warnings on {suite.relation}: "
                + "; ".join(o.describe() for o in result.warnings)[:2000],
                metadata=_metadata(result),
            )
        return dg.AssetCheckResult(passed=True, metadata=_metadata(result))

    return _check


quality_checks = [_check_for(suite) for suite in load_suites()]
