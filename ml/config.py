"""Clustering configuration: every knob, with the defaults documented in docs/ml-segments.md."""

from __future__ import annotations

from dataclasses import dataclass, fields

ALGORITHMS = ("kmeans", "minibatch_kmeans", "gaussian_mixture", "ward", "hdbscan")
CRITERIA = ("silhouette", "davies_bouldin", "calinski_harabasz", "bic")

# The default features: the RFM triple, basket size, tenure, visits, engagement and the
# taste for discounts. Amounts, counts and day spans are right-skewed: log1p before scaling.
DEFAULT_LOG_FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "average_order_value",
    "tenure_days",
    "days_since_last_visit",
    "engagement_score",
)
# Shares and rates, already on a bounded scale.
DEFAULT_LINEAR_FEATURES = ("discounted_order_share",)
# Categoricals (one-hot) are opt-in, for example ("preferred_channel_group",).
DEFAULT_CATEGORICAL_FEATURES: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusteringConfig:
    """How segments are discovered. Every random state comes from ``random_state``."""

    algorithm: str = "kmeans"
    # k is chosen in [k_min, k_max] by `criterion`, unless `k` fixes it. Fewer than four
    # segments are rarely worth a campaign each.
    k_min: int = 4
    k_max: int = 8
    k: int | None = None
    criterion: str = "silhouette"
    # With a previous run, keep its k (scores are still computed and recorded) so that
    # segments do not split or merge from one day to the next; True re-selects every run.
    reselect_k: bool = False
    # With a previous run on the same features, reuse its fitted preprocessing (imputation,
    # scaling, one-hot categories, PCA): medians and quartiles of count features jump
    # between integers as data arrives, which would move every customer a little. True
    # refits it (for example after a change in the business).
    refit_preprocessing: bool = False
    id_column: str = "customer_id"
    log_features: tuple[str, ...] = DEFAULT_LOG_FEATURES
    linear_features: tuple[str, ...] = DEFAULT_LINEAR_FEATURES
    categorical_features: tuple[str, ...] = DEFAULT_CATEGORICAL_FEATURES
    # Categories rarer than this share are pooled into one "infrequent" column.
    min_category_share: float = 0.01
    # Principal components kept after scaling; None keeps the scaled features.
    pca_components: int | None = None
    # The model is fitted on a sample; everyone is scored in chunks.
    fit_sample_size: int = 50_000
    selection_sample_size: int = 10_000
    silhouette_sample_size: int = 3_000
    score_chunk_size: int = 200_000
    n_init: int = 10
    max_iter: int = 300
    hdbscan_min_cluster_size: int = 50
    reason_code_count: int = 3
    # A profile word is used in a segment's name when the segment's mean is at least this
    # many robust units (median / IQR) away from everyone's.
    name_min_effect: float = 0.35
    random_state: int = 42

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion {self.criterion!r} is not one of {', '.join(CRITERIA)}")
        if self.criterion == "bic" and self.algorithm != "gaussian_mixture":
            raise ValueError("criterion 'bic' needs algorithm 'gaussian_mixture'")
        if self.k is not None and self.k < 2:
            raise ValueError(f"k must be at least 2, got {self.k}")
        if not 2 <= self.k_min <= self.k_max:
            raise ValueError(f"need 2 <= k_min <= k_max, got k_min={self.k_min} k_max={self.k_max}")
        if not (self.log_features or self.linear_features or self.categorical_features):
            raise ValueError("no features configured")
        names = self.feature_columns
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"features listed twice: {', '.join(duplicated)}")

    @property
    def numeric_features(self) -> tuple[str, ...]:
        return (*self.log_features, *self.linear_features)

    @property
    def feature_columns(self) -> list[str]:
        return [*self.log_features, *self.linear_features, *self.categorical_features]

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class PropensityConfig:
    """Knobs of both models; defaults documented in docs/predictions.md."""

    churn_days: int = 90
    purchase_days: int = 30
    max_iter: int = 150
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    calibration_folds: int = 3
    # Training stacks this many cut-offs, one window apart (the latest complete window and
    # the ones before it): more rows and more than one season of behaviour.
    training_snapshots: int = 4
    # Training rows beyond this are sampled down (at random, reproducibly): 50,000 rows give
    # the model all it can use, and the fit stays seconds at any scale.
    max_training_rows: int = 50_000
    # Fewer positives or negatives than this in a training window: the model is skipped.
    min_class_count: int = 20
    importance_sample: int = 5000
    importance_repeats: int = 3
    random_state: int = 0
    # A model trained in an earlier run scores again until it is this many days old by
    # as-of date (same settings); 0 retrains every run.
    retrain_days: int = 7

    def window(self, model: str) -> int:
        return {"churn": self.churn_days, "purchase": self.purchase_days}[model]
