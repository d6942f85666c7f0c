"""The clustering asset: customer_features -> segment tables in schema ml.

It sits after the feature mart and its quality gates (GX suites customer_profile and
customer_features are blocking checks upstream), and before the dbt models that read the
segments (stg_ml__customer_clusters -> customer_segments -> snapshot -> CRM sync).
"""

import base64

import dagster as dg
from pydantic import Field

from ml.config import ClusteringConfig
from orchestration.defs.resources import WarehouseResource
from segmint.cluster_tables import TABLES
from segmint.predictions import TABLES as PREDICTION_TABLES

DEFAULTS = ClusteringConfig()


class ClusteringRunConfig(dg.Config):
    """Knobs of the clustering asset; defaults are ml.config.ClusteringConfig's."""

    algorithm: str = Field(
        DEFAULTS.algorithm, description="kmeans, minibatch_kmeans, gaussian_mixture, ward, hdbscan"
    )
    k_min: int = Field(DEFAULTS.k_min, description="smallest k tried")
    k_max: int = Field(DEFAULTS.k_max, description="largest k tried")
    k: int | None = Field(DEFAULTS.k, description="fixed k (skips the selection)")
    criterion: str = Field(
        DEFAULTS.criterion,
        description="silhouette, davies_bouldin, calinski_harabasz or bic (mixtures)",
    )
    reselect_k: bool = Field(
        DEFAULTS.reselect_k, description="choose k again even when a previous run exists"
    )
    refit_preprocessing: bool = Field(
        DEFAULTS.refit_preprocessing,
        description="fit imputation and scaling anew instead of reusing the previous run's",
    )
    log_features: list[str] = Field(
        list(DEFAULTS.log_features), description="skewed features, log1p before scaling"
    )
    linear_features: list[str] = Field(
        list(DEFAULTS.linear_features), description="features scaled as they are"
    )
    categorical_features: list[str] = Field(
        list(DEFAULTS.categorical_features), description="text features, one-hot encoded"
    )
    pca_components: int | None = Field(
        DEFAULTS.pca_components, description="PCA components after scaling (none: no PCA)"
    )
    fit_sample_size: int = Field(DEFAULTS.fit_sample_size, description="customers fitted on")
    selection_sample_size: int = Field(
        DEFAULTS.selection_sample_size, description="customers k is selected on (and Ward/HDBSCAN)"
    )
    silhouette_sample_size: int = Field(
        DEFAULTS.silhouette_sample_size, description="customers the silhouette is computed on"
    )
    score_chunk_size: int = Field(DEFAULTS.score_chunk_size, description="customers per chunk")
    n_init: int = Field(DEFAULTS.n_init, description="k-means / mixture restarts")
    hdbscan_min_cluster_size: int = Field(
        DEFAULTS.hdbscan_min_cluster_size, description="HDBSCAN smallest segment"
    )
    random_state: int = Field(DEFAULTS.random_state, description="seed of every random step")

    def to_library(self) -> ClusteringConfig:
        values = self.model_dump()
        for key in ("log_features", "linear_features", "categorical_features"):
            values[key] = tuple(values[key])
        return ClusteringConfig(**values)


def _image(path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"![{path.stem}](data:image/png;base64,{data})"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["ml", table],
            deps=[dg.AssetKey(["marts", "customer_features"])],
            group_name="ml",
            kinds={"scikitlearn", "duckdb"},
            description=f"ml.{table}, written by the clustering asset (segmint/clusters.py).",
        )
        for table in TABLES
    ],
    name="customer_clustering",
    description=(
        "Discover customer segments with scikit-learn on marts.customer_features: choose k, "
        "keep segment ids and names stable across runs, name segments from their profiles, "
        "score everyone in chunks, write the ml.* tables and PNG plots."
    ),
)
def customer_clustering(context: dg.AssetExecutionContext, config: ClusteringRunConfig,
                        warehouse: WarehouseResource):  # fmt: skip
    from segmint.clusters import run_clustering  # scikit-learn loads when the step runs

    report = run_clustering(warehouse.duckdb, config.to_library())
    if report.skipped:
        context.log.warning(f"clustering skipped: {report.skipped}")
        for table in TABLES:
            yield dg.MaterializeResult(
                asset_key=["ml", table], metadata={"skipped": report.skipped}
            )
        return
    result, run = report.result, report.result.run
    segments = "\n".join(
        ["| id | segment | customers | share |", "|---:|---|---:|---:|"]
        + [
            f"| {r.segment_id} | {r.segment_name} | {r.size:,} | {r.share:.1%} |"
            for r in result.profiles.itertuples()
        ]
    )
    summary = {
        "run_id": run["run_id"],
        "algorithm": run["algorithm"],
        "k": run["k"],
        "k_selection": run["k_selection"],
        "silhouette": run["silhouette"],
        "customers": run["scored_rows"],
        "switched_share": run["switched_share"],
        "adjusted_rand_index_previous": run["adjusted_rand_index_previous"],
        "model_path": dg.MetadataValue.path(str(report.model_path)),
    }
    context.log.info(f"clustering run {run['run_id']}: k={run['k']} ({run['matching']})")
    for table in TABLES:
        metadata = {"run_id": run["run_id"]}
        if table == "customer_clusters":
            metadata = {
                **summary,
                "segments": dg.MetadataValue.md(segments),
                **{
                    f"plot_{name}": dg.MetadataValue.md(_image(path))
                    for name, path in report.plots.items()
                },
                **{
                    f"plot_{name}_file": dg.MetadataValue.path(str(path))
                    for name, path in report.plots.items()
                },
            }
        yield dg.MaterializeResult(asset_key=["ml", table], metadata=metadata)


class PredictionConfig(dg.Config):
    """Knobs of the lifetime value asset (docs/predictions.md)."""

    horizon_months: int = Field(12, description="months of predicted spend in predicted_clv")
    monthly_discount_rate: float = Field(0.01, description="discount rate per month")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["ml", table],
            deps=[
                dg.AssetKey(["marts", "customer_features"]),
                dg.AssetKey(["marts", "fct_orders"]),
            ],
            group_name="ml",
            kinds={"scipy", "duckdb"},
            description=f"ml.{table}, written by the lifetime value asset "
            "(segmint/predictions.py).",
        )
        for table in PREDICTION_TABLES
    ],
    name="customer_lifetime_value",
    description=(
        "Fit BG/NBD and Gamma-Gamma on completed orders as of the marts' as-of date and write "
        "per customer: probability alive, expected purchases (30/90/365 days), expected spend "
        "and predicted CLV; skipped, with the reason, when the orders cannot support the model."
    ),
)
def customer_lifetime_value(context: dg.AssetExecutionContext, config: PredictionConfig,
                            warehouse: WarehouseResource):  # fmt: skip
    import duckdb

    from segmint.predictions import run_predictions  # pandas and scipy load when it runs

    with duckdb.connect(str(warehouse.duckdb)) as con:
        report = run_predictions(con, config.horizon_months, config.monthly_discount_rate)
    if report.skipped:
        context.log.warning(f"lifetime value skipped: {report.skipped}")
    metadata = {
        "run_id": report.run_id,
        "as_of_date": str(report.as_of),
        "customers": report.customers,
        "repeat_buyers": report.repeat_buyers,
        "skipped": report.skipped or "",
        **{k: round(v, 4) for k, v in report.parameters.items()},
    }
    for table in PREDICTION_TABLES:
        yield dg.MaterializeResult(asset_key=["ml", table], metadata=metadata)
