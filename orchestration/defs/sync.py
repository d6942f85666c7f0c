"""CRM sync assets: one per destination in models/marts/activation/_destinations.yml.

Each sits after crm_segment_tags (and its blocking consent gate) and after the segment
snapshot, so the daily job runs ingest -> dbt -> gates -> clustering -> segment marts ->
snapshot -> sync.
"""

import os

import dagster as dg
import duckdb
from pydantic import Field

from orchestration.defs.resources import WarehouseResource
from segmint.sync.config import NOT_CONFIGURED, Destination, DestinationError, load_destinations
from segmint.sync.engine import GuardrailError, SyncError, sync_destination


class SyncConfig(dg.Config):
    dry_run: bool = Field(False, description="plan only: record the plan, send nothing")
    force: bool = Field(False, description="apply even above the destination's max_change_share")


def _sync_asset(destination: Destination) -> dg.AssetsDefinition:
    @dg.asset(
        key=["sync", destination.name],
        deps=[dg.AssetKey(["marts", "crm_segment_tags"]),
              dg.AssetKey(["snapshots", "snap_customer_segments"])],
        group_name="sync",
        kinds={destination.type},
        output_required=False,
        description=(
            f"Sync segmint tags to {destination.name} ({destination.type}): plan against "
            "sync.synced_records, send only changes, record rejected rows and an audit row."
        ),
    )  # fmt: skip
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig,
               warehouse: WarehouseResource):  # fmt: skip
        try:
            configured = destination.check_configured(os.environ)
        except DestinationError as exc:
            raise dg.Failure(description=str(exc)) from exc
        if not configured:
            # Not in use here: the run stays green, and says so (no materialization).
            message = (
                f"{destination.name}: not configured, skipped "
                f"(set {', '.join(destination.required_env)} to sync to it)"
            )
            context.log.info(message)
            yield dg.AssetObservation(
                asset_key=context.asset_key,
                metadata={"status": NOT_CONFIGURED, "detail": message},
            )
            return
        try:
            with duckdb.connect(str(warehouse.duckdb)) as con:
                report = sync_destination(con, destination, dry_run=config.dry_run,
                                          force=config.force)  # fmt: skip
        except (DestinationError, GuardrailError, SyncError) as exc:
            raise dg.Failure(description=str(exc)) from exc
        context.log.info(f"{destination.name}: {report.status}, {report.plan.summary()}")
        yield dg.MaterializeResult(
            metadata={
                "run_id": report.run_id,
                "status": report.status,
                **report.plan.summary(),
                "sent": report.sent,
                "succeeded": report.succeeded,
                "rejected": report.rejected,
                "api_calls": report.stats.api_calls,
                "retries": report.stats.retries,
                "throttled": report.stats.throttled,
                "seconds": round(report.seconds, 2),
            }
        )

    return _asset


sync_assets = [_sync_asset(d) for d in load_destinations()]
