"""The daily job, its schedule, and a sensor that starts it when new landing files appear."""

import hashlib
import json
from pathlib import Path

import dagster as dg

from orchestration.defs.resources import WarehouseResource
from segmint.load import discover

daily_job = dg.define_asset_job(
    "segmint_daily",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description=(
        "Ingest, score ticket tone, dbt staging, quality gates, customer marts, clustering, "
        "segment memberships, snapshot and history, CRM sync: the whole asset graph."
    ),
)

daily_schedule = dg.ScheduleDefinition(
    name="segmint_daily_schedule",
    job=daily_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    description="Every day at 06:00 UTC.",
)


def landing_signature(landing_dir: Path) -> dict[str, list[int]]:
    """Size and modification time of every loadable file in the landing folder."""
    if not landing_dir.is_dir():
        return {}
    files, _ = discover(landing_dir)
    out = {}
    for _, path in files:
        stat = path.stat()
        out[str(path.relative_to(landing_dir))] = [stat.st_size, stat.st_mtime_ns]
    return out


def new_landing_files(landing_dir: Path, cursor: str | None) -> tuple[list[str], str]:
    """Files that are new or changed since the cursor, and the next cursor."""
    seen = json.loads(cursor) if cursor else {}
    current = landing_signature(landing_dir)
    changed = sorted(name for name, sig in current.items() if seen.get(name) != sig)
    return changed, json.dumps(current, sort_keys=True)


@dg.sensor(
    name="landing_files_sensor",
    job=daily_job,
    minimum_interval_seconds=30,
    description="Starts segmint_daily when files are added to or changed in the landing folder.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    changed, cursor = new_landing_files(warehouse.landing, context.cursor)
    context.update_cursor(cursor)
    if not changed:
        return dg.SkipReason("no new or changed landing files")
    run_key = hashlib.sha256(cursor.encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=run_key, tags={"segmint/new_files": ", ".join(changed)[:200]})
