"""CRM sync: one asset per destination in models/marts/activation/_destinations.yml.

They sit after crm_segment_tags (and its blocking consent gate) and after the segment
snapshot, so the daily job runs ingest -> dbt -> gates -> clustering -> segment marts ->
snapshot -> sync. The destinations are independent and each is paced by its own rate limit,
so one step syncs every selected destination at once (segmint.sync.engine.sync_concurrently;
their warehouse writes still one at a time); each keeps its own asset, metadata and failure.
"""

import os
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from orchestration.defs.resources import WarehouseResource
from segmint.sync.config import NOT_CONFIGURED, load_destinations

if TYPE_CHECKING:
    from segmint.sync.engine import DestinationResult


class SyncConfig(dg.Config):
    dry_run: bool = Field(False, description="plan only: record the plan, send nothing")
    force: bool = Field(False, description="apply even above the destination's max_change_share")


DESTINATIONS = load_destinations()
_UPSTREAM = [dg.AssetKey(["activation", "crm_segment_tags"]),
             dg.AssetKey(["snapshots", "snap_customer_segments"])]  # fmt: skip


def _key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["sync", name])


def _event(result: "DestinationResult", log) -> dg.MaterializeResult | dg.AssetObservation | None:
    name = result.destination.name
    if result.not_configured:
        # Not in use here: the run stays green, and says so (no materialization).
        message = (
            f"{name}: not configured, skipped "
            f"(set {', '.join(result.destination.required_env)} to sync to it)"
        )
        log.info(message)
        return dg.AssetObservation(
            asset_key=_key(name), metadata={"status": NOT_CONFIGURED, "detail": message}
        )
    if result.report is None:
        log.error(result.error)
        return None
    report = result.report
    log.info(f"{name}: {report.status}, {report.plan.summary()}")
    return dg.MaterializeResult(
        asset_key=_key(name),
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
        },
    )


@dg.multi_asset(
    name="sync_destinations",
    specs=[
        dg.AssetSpec(
            _key(d.name),
            deps=_UPSTREAM,
            group_name="sync",
            kinds={d.type},
            skippable=True,
            description=(
                f"Sync segmint tags to {d.name} ({d.type}): plan against "
                "sync.synced_records, send only changes, record rejected rows and an audit row."
            ),
        )
        for d in DESTINATIONS
    ],
    can_subset=True,
)
def sync_destinations(context: dg.AssetExecutionContext, config: SyncConfig,
                      warehouse: WarehouseResource):  # fmt: skip
    chosen = [d for d in DESTINATIONS if _key(d.name) in context.selected_asset_keys]
    from segmint.sync.engine import sync_concurrently  # pandas and httpx load when it runs

    with warehouse.connect("sync") as con:
        results = sync_concurrently(
            con, chosen, os.environ, dry_run=config.dry_run, force=config.force
        )
    for result in results:
        event = _event(result, context.log)
        if event is not None:
            yield event
    failed = [r.error for r in results if r.error]
    if failed:
        # The destinations that succeeded keep their materializations; the step fails.
        raise dg.Failure(description="; ".join(failed))


sync_assets = [sync_destinations]
