"""Ingestion: validated loading of the landing folder into the raw schema, then erasure.

Erasure requests are carried out in the same step, right after the load and before dbt or
any quality gate: no later step ever sees an erased person, and a failing gate cannot hold
an erasure back (segmint.privacy).
"""

import dagster as dg

from orchestration.defs.privacy import (
    ERASURE_KEY,
    SALT_KEY,
    SUPPRESSION_KEY,
    SWEEP_KEY,
    run_erasure,
)
from orchestration.defs.resources import WarehouseResource
from segmint.contracts import TABLES, contracts
from segmint.load import LoadError, load

QUARANTINE_KEY = dg.AssetKey(["raw", "quarantined_rows"])


def _specs() -> list[dg.AssetSpec]:
    specs = [
        dg.AssetSpec(
            ["raw", table],
            group_name="ingestion",
            description=contracts()[table].description,
            kinds={"duckdb"},
        )
        for table in TABLES
    ]
    specs.append(
        dg.AssetSpec(
            QUARANTINE_KEY,
            group_name="ingestion",
            description=(
                "Rows that broke the raw-data contract: file, row number, field, reason, payload."
            ),
            kinds={"duckdb"},
        )
    )
    specs.append(
        dg.AssetSpec(
            ERASURE_KEY,
            group_name="ingestion",
            description=(
                "Erasure requests carried out: the person's rows removed from every table, "
                "file and CRM; per request and layer what was done, with no personal data."
            ),
            kinds={"duckdb"},
        )
    )
    specs.append(
        dg.AssetSpec(
            SUPPRESSION_KEY,
            group_name="ingestion",
            description=(
                "Salted hashes of erased identifiers: read by dbt (dim_customers flags "
                "anyone holding one) and by the next erasure (old files loaded again)."
            ),
            kinds={"duckdb"},
        )
    )
    specs.append(
        dg.AssetSpec(
            SALT_KEY,
            group_name="ingestion",
            description=(
                "The PII salt, stored once per warehouse where the hashing SQL reads it "
                "(never in SQL text); a different salt later is refused."
            ),
            kinds={"duckdb"},
        )
    )
    return specs


def sweep_follows(run: dg.DagsterRun) -> bool:
    """Whether the run materializes the erasure sweep after the ingestion step: the whole
    job (no selection: None, or empty when launched in process) or a selection with it."""
    return not run.asset_selection or SWEEP_KEY in run.asset_selection


@dg.multi_asset(specs=_specs(), can_subset=False)
def raw_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Validate every new landing file against its contract and load it (one transaction),
    then carry out erasure requests."""
    try:
        report = load(warehouse.landing, warehouse.warehouse,
                      memory_limit=warehouse.load_memory_limit)  # fmt: skip
    except (LoadError, FileNotFoundError) as exc:
        raise dg.Failure(description=f"load failed, nothing was loaded: {exc}") from exc
    totals = report.totals()
    for table in TABLES:
        row = totals[table]
        yield dg.MaterializeResult(
            asset_key=["raw", table],
            metadata={
                "files_loaded": row["files"],
                "rows_read": row["read"],
                "rows_loaded": row["loaded"],
                "rows_quarantined": row["quarantined"],
                "rows_suppressed": row["suppressed"],
                "load_id": report.load_id,
            },
        )
    skipped = [f.path.name for f in report.files if f.skipped_as]
    if skipped:
        context.log.info(f"already loaded (same checksum), skipped: {', '.join(skipped)}")
    for path in report.unrecognized:
        context.log.warning(f"{path} matches no raw table and was not loaded")
    yield dg.MaterializeResult(
        asset_key=QUARANTINE_KEY,
        metadata={
            "rows_quarantined": sum(t["quarantined"] for t in totals.values()),
            "rows_suppressed": sum(t["suppressed"] for t in totals.values()),
            "warehouse": warehouse.warehouse.describe(),
        },
    )
    # Before dbt: the graph is the last run's (requests it has not placed yet wait for the
    # erasure sweep after this run's identity step).
    # The file's rewrite waits for the erasure sweep at the end of the run (one rewrite per
    # run), unless the run materializes a selection without it.
    metadata = run_erasure(
        context, warehouse, graph_is_current=False, rewrite_now=not sweep_follows(context.run)
    )
    development = metadata.pop("development_salt")
    yield dg.MaterializeResult(asset_key=ERASURE_KEY, metadata=metadata)
    yield dg.MaterializeResult(asset_key=SALT_KEY, metadata={"development_salt": development})
    yield dg.MaterializeResult(
        asset_key=SUPPRESSION_KEY, metadata={"identifiers": metadata["suppressed_identifiers"]}
    )
