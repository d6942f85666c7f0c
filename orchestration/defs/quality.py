"""Great Expectations suites as Dagster asset checks: one check per suite file.

The checks of the assets one step builds run together, in one step of their own (a
``multi_asset_check`` per step): one GX context validates all of that step's suites and
renders Data Docs once. The check keys stay one per suite, ``gx_<suite>``.

A suite with a blocking expectation is a blocking check: when one of its blocking
expectations fails, the check fails with severity ERROR and Dagster skips everything
downstream of the asset (the dbt steps after it, the segment history, and what follows).
Failed warning expectations fail the check with severity WARN and stop nothing.

Great Expectations is imported when a check runs, not when the code location loads.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from orchestration.defs.resources import WarehouseResource
from segmint.quality.suites import Suite, load_suites

if TYPE_CHECKING:
    from segmint.quality.validate import SuiteResult


def _metadata(result: "SuiteResult", docs_dir: Path) -> dict[str, dg.MetadataValue]:
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
        "data_docs": dg.MetadataValue.path(str(docs_dir / "index.html")),
    }


def _json(data) -> dg.MetadataValue:
    """Warehouse values (decimals, dates) as JSON metadata."""
    return dg.MetadataValue.json(json.loads(json.dumps(data, default=str)))


def _check_name(suite: Suite) -> str:
    return f"gx_{suite.name}"


def _asset_key(suite: Suite) -> dg.AssetKey:
    return dg.AssetKey(suite.asset.split("/"))


def check_result(result: "SuiteResult", docs_dir: Path) -> dg.AssetCheckResult:
    """One suite's verdict as the result of its check."""
    suite = result.suite
    common = {"asset_key": _asset_key(suite), "check_name": _check_name(suite)}
    if result.skipped:
        return dg.AssetCheckResult(
            **common,
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
            **common,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"blocking expectations failed on {suite.relation}: {names}"[:2000],
            metadata=_metadata(result, docs_dir),
        )
    if result.warnings:
        return dg.AssetCheckResult(
            **common,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"warnings on {suite.relation}: "
            + "; ".join(o.describe() for o in result.warnings)[:2000],
            metadata=_metadata(result, docs_dir),
        )
    return dg.AssetCheckResult(**common, passed=True, metadata=_metadata(result, docs_dir))


def _step_checks(name: str, suites: Sequence[Suite], docs_dir: Path) -> dg.AssetChecksDefinition:
    by_key = {dg.AssetCheckKey(_asset_key(s), _check_name(s)): s for s in suites}

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                name=_check_name(s),
                asset=_asset_key(s),
                blocking=s.blocking,
                description=f"Great Expectations suite expectations/{s.path.name}: {s.description}",
            )
            for s in suites
        ],
        name=name,
        can_subset=True,
        description="Great Expectations suites of the assets one step builds, in one context.",
    )
    def _checks(context: dg.AssetCheckExecutionContext,
                warehouse: WarehouseResource) -> Iterator[dg.AssetCheckResult]:  # fmt: skip
        from segmint.quality.validate import validate

        selected = [by_key[k] for k in context.selected_asset_check_keys if k in by_key]
        selected.sort(key=lambda s: s.name)
        for result in validate(warehouse.warehouse, selected, docs_dir=docs_dir):
            yield check_result(result, docs_dir)

    return _checks


def build_quality_checks(docs_dir: Path, steps: Iterable[dg.AssetsDefinition],
                         suites: Sequence[Suite] | None = None,
                         ) -> list[dg.AssetChecksDefinition]:  # fmt: skip
    """The GX checks, one multi-check per step that builds validated assets.

    ``steps`` are the asset definitions whose assets the suites gate (the dbt steps); a
    suite's check joins the step that builds its asset.
    """
    suites = load_suites() if suites is None else suites
    groups: dict[str, list[Suite]] = {}
    for suite in suites:
        key = _asset_key(suite)
        owner = next((a for a in steps if key in a.keys), None)
        if owner is None:
            raise ValueError(
                f"expectations/{suite.path.name}: asset {suite.asset} is built by no step"
            )
        groups.setdefault(f"gx_{owner.node_def.name}", []).append(suite)
    return [_step_checks(name, group, Path(docs_dir)) for name, group in groups.items()]
