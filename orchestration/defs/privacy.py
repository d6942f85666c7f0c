"""Erasure in the daily job: carried out by the ingestion step (before dbt and the gates),
and swept again once the run has rebuilt the identity graph (before the BI copy).

The sweep finds the records of an erased person that the graph placed only in this run
(another email, a phone, a typo-matched name): without it they would wait for the next run.
"""

import os
import time

import dagster as dg

from orchestration.defs.resources import WarehouseResource

ERASURE_KEY = dg.AssetKey(["privacy", "erasure_log"])
SUPPRESSION_KEY = dg.AssetKey(["privacy", "suppression_list"])
SALT_KEY = dg.AssetKey(["privacy", "pii_salt"])
SWEEP_KEY = dg.AssetKey(["privacy", "erasure_sweep"])


def run_erasure(
    context, warehouse: WarehouseResource, graph_is_current: bool, rewrite_now: bool
) -> dict:
    """Carry out erasure requests (segmint.privacy.erase); metadata without personal data.

    ``rewrite_now``: rewrite the DuckDB file at once when rows were deleted (and when an
    earlier step deferred its rewrite); otherwise defer it to the run's erasure sweep.
    """
    from segmint.privacy import SCHEMA, erase
    from segmint.sync.config import load_destinations

    destinations = load_destinations()
    folders = [warehouse.docs] if warehouse.data_docs_dir else []
    for d in destinations:
        if d.type == "file" and d.check_configured(os.environ):
            folders.append(d.export_dir(os.environ) / d.name)
    with warehouse.connect("erasure") as con:
        report = erase(con, warehouse.pii_salt, folders=folders, destinations=destinations,
                       environ=os.environ, graph_is_current=graph_is_current)  # fmt: skip
        suppressed = con.execute(f"select count(*) from {SCHEMA}.suppression_list").fetchall()[0][0]
        development = con.execute(
            f"select max(case when is_development then 1 else 0 end) from {SCHEMA}.pii_salt"
        )
        development = bool(development.fetchall()[0][0])
    # Deleted values must not linger in the file's freed blocks (DuckDB; on Snowflake,
    # Time Travel's retention applies). The run holds the warehouse; the step's connection
    # is closed. The ingestion step leaves the rewrite to the sweep at the end of the run:
    # one rewrite per run.
    started = time.perf_counter()
    compaction, deferred = None, False
    if report.total_rows and not rewrite_now:
        warehouse.warehouse.defer_compaction()
        deferred = warehouse.warehouse.compaction_pending()  # Snowflake: nothing to rewrite
    elif report.total_rows or warehouse.warehouse.compaction_pending():
        compaction = warehouse.warehouse.compact()
    rewrite_seconds = time.perf_counter() - started
    if report.requests or report.customers:
        context.log.info(
            f"erasure: {len(report.requests)} new request(s), {report.customers} customer(s), "
            f"{report.total_rows:,} rows and {len(report.files)} file(s) removed"
        )
    pending = sorted(n for n, o in report.destinations.items() if o == "pending")
    if pending:
        context.log.warning(
            f"erasure pending at {', '.join(pending)} (not configured here): their sync state "
            "is kept until they can be reached"
        )
    return {
        "requests": len(report.requests),
        "customers_erased": report.customers,
        "rows_removed": report.total_rows,
        "reloaded_rows_removed": report.reloaded_rows,
        "files_changed": len(report.files),
        "destinations": ", ".join(f"{n}: {o}" for n, o in sorted(report.destinations.items()))
        or "none",
        "suppressed_identifiers": int(suppressed),
        "development_salt": development,
        "file_rewritten": compaction is not None,
        "file_rewrite_deferred": deferred,
        # Where the step's time went: erase()'s parts, and the file's rewrite.
        **{f"seconds_{part}": round(t, 2) for part, t in sorted(report.seconds.items())},
        "seconds_rewrite": round(rewrite_seconds, 2) if compaction is not None else 0.0,
    }


def erasure_sweep_asset(upstream: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=SWEEP_KEY,
        deps=upstream,
        group_name="serving",
        kinds={"duckdb"},
        description=(
            "Erasure again, on the identity graph this run built: records of an erased person "
            "placed only now are removed before BI tools get their copy."
        ),
    )
    def erasure_sweep(context: dg.AssetExecutionContext,
                      warehouse: WarehouseResource) -> dg.MaterializeResult:  # fmt: skip
        return dg.MaterializeResult(
            metadata=run_erasure(context, warehouse, graph_is_current=True, rewrite_now=True)
        )

    return erasure_sweep
