"""The clustering asset: customer_features -> segment tables in schema ml.

It sits after the feature mart and its quality gates (GX suites customer_profile and
customer_features are blocking checks upstream), and before the dbt models that read the
segments (stg_ml__customer_clusters -> customer_segments -> snapshot -> CRM sync).
"""

import base64
from dataclasses import replace

import dagster as dg
from pydantic import Field

from ml.config import ClusteringConfig, PropensityConfig
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


def _plots(folder, plots: dict[str, bytes]) -> dict:
    """Write each PNG to ``folder/<name>.png``; the metadata showing it in the UI."""
    metadata = {}
    for name, png in plots.items():
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        path.write_bytes(png)
        metadata[f"plot_{name}"] = dg.MetadataValue.md(_image(path))
        metadata[f"plot_{name}_file"] = dg.MetadataValue.path(str(path))
    return metadata


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["ml", table],
            deps=[dg.AssetKey(["marts", "customer_features"])],
            group_name="ml",
            kinds={"scikitlearn"},
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

    with warehouse.connect("customer_clustering") as con:
        report = run_clustering(con, config.to_library(), warehouse.artifacts / "ml")
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


PROPENSITY = PropensityConfig()
PREDICTIONS_KEY = dg.AssetKey(["ml", "customer_predictions"])


class PredictionConfig(dg.Config):
    """Knobs of the predictions asset (docs/predictions.md); propensity defaults are
    ml.propensity.PropensityConfig's."""

    horizon_months: int = Field(12, description="months of predicted spend in predicted_clv")
    monthly_discount_rate: float = Field(0.01, description="discount rate per month")
    churn_days: int = Field(PROPENSITY.churn_days, description="churned: no order in N days")
    purchase_days: int = Field(
        PROPENSITY.purchase_days, description="converted: an order within N days"
    )
    training_snapshots: int = Field(
        PROPENSITY.training_snapshots, description="cut-offs stacked for training"
    )
    max_training_rows: int = Field(
        PROPENSITY.max_training_rows, description="training rows sampled down to this"
    )
    max_iter: int = Field(PROPENSITY.max_iter, description="boosting iterations")
    learning_rate: float = Field(PROPENSITY.learning_rate, description="boosting learning rate")
    min_class_count: int = Field(
        PROPENSITY.min_class_count, description="fewest positives or negatives to train"
    )
    random_state: int = Field(PROPENSITY.random_state, description="seed of every random step")
    retrain_days: int = Field(
        PROPENSITY.retrain_days,
        description="score with the last trained models until they are this many days old "
        "(same settings); 0 retrains every run",
    )
    min_backtest_auc: float = Field(
        0.6, description="warn when a model's out-of-time AUC is below this"
    )
    max_population_stability: float = Field(
        0.25, description="warn when scores shift more than this against the previous run (PSI)"
    )

    def propensity(self) -> PropensityConfig:
        return replace(
            PROPENSITY,
            churn_days=self.churn_days,
            purchase_days=self.purchase_days,
            training_snapshots=self.training_snapshots,
            max_training_rows=self.max_training_rows,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            min_class_count=self.min_class_count,
            random_state=self.random_state,
            retrain_days=self.retrain_days,
        )


def _backtest_check(report, floor: float) -> dg.AssetCheckResult:
    """Each model's out-of-time AUC at or above the floor, and above the RFM baseline's."""
    rows, failing = [], []
    for model, result in report.propensity.items():
        if result.skipped:
            rows.append(f"| {model} | skipped: {result.skipped} | | |")
            continue
        auc, base = result.backtest["auc"], result.baseline["auc"]
        lift = result.backtest["top_decile_lift"]
        rows.append(f"| {model} | {auc:.3f} | {base:.3f} | {lift:.2f} |")
        if auc < floor or auc <= base:
            failing.append(model)
    table = "\n".join(["| model | AUC | RFM baseline AUC | top-decile lift |",
                       "|---|---:|---:|---:|", *rows])  # fmt: skip
    return dg.AssetCheckResult(
        check_name="propensity_backtest",
        asset_key=PREDICTIONS_KEY,
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "floor_auc": floor,
            "below_floor_or_baseline": ", ".join(failing),
            "backtest": dg.MetadataValue.md(table),
        },
    )


def _drift_check(report, ceiling: float) -> dg.AssetCheckResult:
    """Scores against the previous run's: population stability index per model."""
    drifted = [m for m, psi in report.drift.items() if psi is not None and psi > ceiling]
    return dg.AssetCheckResult(
        check_name="prediction_drift",
        asset_key=PREDICTIONS_KEY,
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "max_population_stability": ceiling,
            "drifted": ", ".join(drifted),
            **{f"psi_{m}": round(psi, 4) for m, psi in report.drift.items()},
            "compared": ", ".join(sorted(report.drift)) or "no previous run",
        },
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["ml", table],
            deps=[
                dg.AssetKey(["marts", "customer_features"]),
                dg.AssetKey(["marts", "fct_orders"]),
                dg.AssetKey(["marts", "fct_sessions"]),
            ],
            group_name="ml",
            kinds={"scikitlearn", "scipy"},
            description=f"ml.{table}, written by the predictions asset (segmint/predictions.py).",
        )
        for table in PREDICTION_TABLES
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "propensity_backtest",
            asset=PREDICTIONS_KEY,
            description="Each propensity model's out-of-time AUC is at least min_backtest_auc "
            "and above the RFM-score baseline's (warning).",
        ),
        dg.AssetCheckSpec(
            "prediction_drift",
            asset=PREDICTIONS_KEY,
            description="Propensity scores moved less than max_population_stability (PSI) "
            "against the previous run (warning).",
        ),
    ],
    name="customer_predictions",
    description=(
        "Per customer, as of the marts' as-of date: lifetime value (BG/NBD and Gamma-Gamma: "
        "probability alive, expected purchases, expected spend, predicted CLV) and the churn "
        "and purchase propensities (calibrated gradient boosting, backtested out of time "
        "against an RFM baseline); each part is skipped, with the reason, when the data "
        "cannot support it."
    ),
)
def customer_predictions(context: dg.AssetExecutionContext, config: PredictionConfig,
                         warehouse: WarehouseResource):  # fmt: skip
    from segmint.predictions import run_predictions  # scikit-learn loads when it runs

    with warehouse.connect("customer_predictions") as con:
        report = run_predictions(
            con, config.horizon_months, config.monthly_discount_rate, config.propensity()
        )
    if report.skipped:
        context.log.warning(f"lifetime value skipped: {report.skipped}")
    for model, result in report.propensity.items():
        if result.skipped:
            context.log.warning(f"{model} propensity skipped: {result.skipped}")
    metadata = {
        "run_id": report.run_id,
        "as_of_date": str(report.as_of),
        "customers": report.customers,
        "repeat_buyers": report.repeat_buyers,
        "skipped": report.skipped or "",
        **{k: round(v, 4) for k, v in report.parameters.items()},
    }
    for model, result in report.propensity.items():
        metadata[f"{model}_skipped"] = result.skipped or ""
        if not result.skipped:
            metadata[f"{model}_auc"] = round(result.backtest["auc"], 4)
            metadata[f"{model}_baseline_auc"] = round(result.baseline["auc"], 4)
            metadata[f"{model}_scored"] = len(result.scores)
            metadata[f"{model}_trained_in_run"] = result.parameters.get("trained_in_run", "")
    metadata.update(_plots(warehouse.artifacts / "ml" / report.run_id, report.plots))
    for table in PREDICTION_TABLES:
        yield dg.MaterializeResult(asset_key=["ml", table], metadata=metadata)
    yield _backtest_check(report, config.min_backtest_auc)
    yield _drift_check(report, config.max_population_stability)


@dg.asset(
    key=["experiments", "uplift_plots"],
    deps=[dg.AssetKey(["marts", "experiment_results"])],
    group_name="ml",
    kinds={"matplotlib"},
    description="A plot per experiment (docs/experiments.md): conversion by arm and the "
    "uplift's 95% interval per window after entry, in the metadata and as PNG files.",
)
def experiment_plots(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    from segmint.experiments import plot_results  # matplotlib loads when the step runs

    with warehouse.connect("experiment_plots") as con:
        plots = plot_results(con)
    metadata = {"experiments_plotted": len(plots),
                **_plots(warehouse.artifacts / "experiments", plots)}  # fmt: skip
    if not plots:
        context.log.info("no experiment has members in both arms past a window yet")
    return dg.MaterializeResult(metadata=metadata)
