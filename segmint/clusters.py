"""The clustering step's warehouse side: read features and the last run, write the results.

The tables in schema ``ml`` have fixed, typed definitions (their contract): dbt reads them
as sources (models/staging/ml/) and BI tools query them.

- ``customer_clusters``: the current segment of every customer (replaced each run).
- ``segmentation_runs``, ``cluster_profiles``, ``cluster_centroids``, ``cluster_scaling``,
  ``cluster_projection``: one set of rows per run, kept, keyed by ``run_id``.
- ``model_artifacts``: each run's fitted model (segmint/artifacts.py), which the next run
  reuses; the file under the artifacts folder is a copy to inspect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import joblib
import pandas as pd

from ml.config import ClusteringConfig
from ml.plots import write_plots
from ml.preprocess import NoUsableFeatures
from ml.segmentation import SegmentationResult, fit_segmentation
from ml.stability import PreviousRun
from segmint import artifacts, tables
from segmint.cluster_tables import FEATURES_RELATION, TABLES

MODEL_ARTIFACT = "model.joblib"


def ensure_tables(con) -> None:
    tables.ensure_tables(con, "ml", TABLES)
    artifacts.ensure_table(con)
    # Warehouses made before features could be dropped gain the column.
    con.execute(
        "alter table ml.segmentation_runs add column if not exists dropped_features varchar"
    )


def read_features(con) -> pd.DataFrame:
    return con.execute(f"select * from {FEATURES_RELATION} order by customer_id").df()


def previous_run(con) -> PreviousRun | None:
    """The latest run's k, prepared-space centroids, names and assignments (None at first)."""
    if not tables.exists(con, "ml", "segmentation_runs"):
        return None
    last = con.execute(
        "select run_id, k, model_path from ml.segmentation_runs "
        "order by trained_at desc, run_id desc limit 1"
    ).fetchone()
    if last is None:
        return None
    run_id, k, model_path = last
    # The last model's preprocessing is reused: from the warehouse, or (runs made before
    # models were stored there) from its file while that is still there.
    model = artifacts.load(con, run_id, MODEL_ARTIFACT)
    if model is None and model_path and Path(model_path).exists():
        model = joblib.load(model_path)
    pipeline = model.pipeline if model is not None else None
    cents = con.execute(
        "select segment_id, dimension, dimension_name, value from ml.cluster_centroids "
        "where run_id = ? and space = 'prepared' order by segment_id, dimension",
        [run_id],
    ).df()
    names_order = (
        cents.drop_duplicates("dimension").sort_values("dimension")["dimension_name"].tolist()
    )
    wide = cents.pivot(index="segment_id", columns="dimension_name", values="value")[names_order]
    names = dict(
        con.execute(
            "select segment_id, segment_name from ml.cluster_profiles where run_id = ?", [run_id]
        ).fetchall()
    )
    assignments = (
        con.execute("select customer_id, segment_id from ml.customer_clusters")
        .df()
        .set_index("customer_id")["segment_id"]
    )
    max_id = con.execute("select coalesce(max(segment_id), 0) from ml.cluster_centroids").fetchone()
    return PreviousRun(
        run_id=run_id,
        k=int(k),
        prepared_names=names_order,
        centroids=wide,
        names={int(i): n for i, n in names.items()},
        assignments=assignments,
        max_segment_id=int(max_id[0]),
        pipeline=pipeline,
    )


def write_result(con, result: SegmentationResult, model_path: Path | None) -> None:
    """Write one run in one transaction: customer_clusters replaced, the rest appended."""
    ensure_tables(con)
    run = pd.DataFrame([{**result.run, "model_path": str(model_path) if model_path else None}])
    frames = {
        "segmentation_runs": run,
        "cluster_profiles": result.profiles,
        "cluster_centroids": result.centroids,
        "cluster_scaling": result.scaling,
        "cluster_projection": result.projection,
    }
    with tables.transaction(con):
        con.execute("delete from ml.customer_clusters")
        tables.insert_frame(con, "ml.customer_clusters", result.assignments)
        for table, frame in frames.items():
            tables.insert_frame(con, f"ml.{table}", frame)
        artifacts.save(con, result.run["run_id"], MODEL_ARTIFACT, result.model)


@dataclass
class ClusteringReport:
    result: SegmentationResult | None
    model_path: Path | None
    plots: dict[str, Path]
    skipped: str | None = None  # why nothing was clustered (no feature varies)


def run_clustering(con, config: ClusteringConfig, artifacts_dir: Path) -> ClusteringReport:
    """Read customer_features, fit and score, save the model and plots, write the tables.

    ``con``: a DuckDB connection or a segmint.snowflake.SnowflakeConnection; the model and
    plots are written under ``artifacts_dir/<run id>/``.
    """
    features = read_features(con)
    previous = previous_run(con)
    try:
        result = fit_segmentation(features, config, previous)
    except NoUsableFeatures as exc:
        # A business with nothing to cluster on (a CRM export alone): no clusters,
        # not a failure; earlier clusters would describe data that no longer varies.
        ensure_tables(con)
        con.execute("delete from ml.customer_clusters")
        return ClusteringReport(None, None, {}, skipped=str(exc))
    folder = artifacts_dir / result.run["run_id"]
    model_path = result.model.save(folder / "model.joblib")
    plots = write_plots(result, folder)
    write_result(con, result, model_path)
    return ClusteringReport(result, model_path, plots)
