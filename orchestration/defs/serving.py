"""The read copy for BI tools: the marts published to a separate DuckDB file after a run."""

import dagster as dg

from orchestration.defs.dbt import dbt_history_assets, dbt_models_assets, dbt_segments_assets
from orchestration.defs.privacy import SWEEP_KEY, erasure_sweep_asset
from orchestration.defs.resources import WarehouseResource
from segmint.warehouse import BI_SCHEMAS

BI_COPY_KEY = dg.AssetKey(["bi", "read_copy"])
_BUILT = [*dbt_models_assets.keys, *dbt_segments_assets.keys, *dbt_history_assets.keys]
erasure_sweep = erasure_sweep_asset(_BUILT)


@dg.asset(
    key=BI_COPY_KEY,
    deps=[*_BUILT, SWEEP_KEY],
    group_name="serving",
    kinds={"duckdb"},
    description=(
        f"The schemas BI tools read ({', '.join(BI_SCHEMAS)}; activation tables left out) copied "
        "to SEGMINT_BI_DUCKDB_PATH and renamed over the previous copy in one step: a BI tool "
        "may hold it open for hours without blocking a run, and sees new data on reconnect."
    ),
)
def bi_read_copy(context: dg.AssetExecutionContext,
                 warehouse: WarehouseResource) -> dg.MaterializeResult:  # fmt: skip
    if warehouse.target == "snowflake":
        context.log.info("on Snowflake, BI tools read the marts schema in place (their own role)")
        return dg.MaterializeResult(metadata={"published": False})
    if not warehouse.bi_duckdb_path:
        context.log.info("no BI copy path configured (SEGMINT_BI_DUCKDB_PATH): nothing published")
        return dg.MaterializeResult(metadata={"published": False})
    copy = warehouse.warehouse.publish_bi_copy()
    return dg.MaterializeResult(
        metadata={
            "published": True,
            "path": dg.MetadataValue.path(str(copy.path)),
            "tables": len(copy.tables),
            "rows": copy.rows,
        }
    )
