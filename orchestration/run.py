"""Materialize the whole asset graph in process: the body of `segmint run` and `segmint demo`."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from segmint.contracts import TABLES
from segmint.sync.config import NOT_CONFIGURED

_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
_VERBOSE = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


@dataclass
class RunSummary:
    run_id: str
    success: bool
    loaded: dict[str, tuple[int, int]] = field(
        default_factory=dict
    )  # table -> (loaded, quarantined)
    materialized: list[str] = field(default_factory=list)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    not_configured: list[str] = field(default_factory=list)  # destinations skipped

    @property
    def dbt_nodes_built(self) -> int:
        python_assets = ("raw/", "enrichment/", "ml/", "sync/", "bi/")
        return sum(1 for key in self.materialized if not key.startswith(python_assets))


def run_all(verbose: bool = False) -> RunSummary:
    """Run the daily job against the instance in DAGSTER_HOME, so the UI shows the run."""
    from orchestration.definitions import defs

    job = defs().resolve_job_def("segmint_daily")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_config=_VERBOSE if verbose else _QUIET
        )
    return summarize(result)


def summarize(result: dg.ExecuteInProcessResult) -> RunSummary:
    summary = RunSummary(run_id=result.run_id, success=result.success)
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        key = mat.asset_key.to_user_string()
        summary.materialized.append(key)
        path = mat.asset_key.path
        if len(path) == 2 and path[0] == "raw" and path[1] in TABLES:
            meta = mat.metadata
            summary.loaded[path[1]] = (
                int(meta["rows_loaded"].value),
                int(meta["rows_quarantined"].value),
            )
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        if evaluation.passed:
            summary.checks_passed += 1
        elif evaluation.severity == dg.AssetCheckSeverity.WARN:
            summary.checks_warned.append(name)
        else:
            summary.checks_failed.append(name)
    for event in result.all_events:
        if event.event_type_value == "ASSET_OBSERVATION":
            observation = event.event_specific_data.asset_observation
            status = observation.metadata.get("status")
            if status is not None and status.value == NOT_CONFIGURED:
                summary.not_configured.append(observation.asset_key.path[-1])
    summary.failed_steps = list(result.get_failed_step_keys())
    return summary
