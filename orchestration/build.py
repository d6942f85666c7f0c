"""The Definitions of the code location, built from settings (see orchestration/definitions.py)."""

import dagster as dg

from segmint.config import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    from orchestration.defs.dbt_project import ensure_manifest

    settings.check()  # the development salt is refused outside dev and ci
    ensure_manifest(settings.dbt_target, settings.duckdb_path)  # before the dbt assets load
    from orchestration.defs.automation import daily_job, daily_schedule, landing_files_sensor
    from orchestration.defs.dbt import segmint_dbt_assets
    from orchestration.defs.enrichment import ticket_tones
    from orchestration.defs.ingestion import raw_tables
    from orchestration.defs.ml import customer_clustering, customer_predictions, experiment_plots
    from orchestration.defs.quality import build_quality_checks
    from orchestration.defs.resources import build_resources
    from orchestration.defs.serving import bi_read_copy, erasure_sweep
    from orchestration.defs.sync import sync_assets

    return dg.Definitions(
        assets=[
            raw_tables,
            ticket_tones,
            *segmint_dbt_assets,
            customer_clustering,
            customer_predictions,
            experiment_plots,
            *sync_assets,
            erasure_sweep,
            bi_read_copy,
        ],
        asset_checks=build_quality_checks(settings.data_docs_dir, segmint_dbt_assets),
        jobs=[daily_job],
        schedules=[daily_schedule],
        sensors=[landing_files_sensor],
        resources=build_resources(settings),
        # One writer: every step of a run executes in one process, one after another,
        # whatever launches it (UI, schedule, sensor, `dagster job execute`, `segmint run`).
        # DuckDB allows one read-write process per file; in process, the code loads once.
        executor=dg.in_process_executor,
    )
