"""Ingestion: validated loading of the landing folder into the raw schema."""

import dagster as dg

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
    return specs


@dg.multi_asset(specs=_specs(), can_subset=False)
def raw_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Validate every new landing file against its contract and load it (one transaction)."""
    try:
        report = load(warehouse.landing, warehouse.duckdb)
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
            "warehouse": dg.MetadataValue.path(str(warehouse.duckdb)),
        },
    )
