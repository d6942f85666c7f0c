"""Estimators by name, and the choice of k over a range with every score recorded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture

from ml.config import ClusteringConfig

# For each criterion: is a larger value better?
LARGER_IS_BETTER = {
    "silhouette": True,
    "calinski_harabasz": True,
    "davies_bouldin": False,
    "bic": False,
}


def make_estimator(config: ClusteringConfig, k: int | None, init: np.ndarray | None = None):
    """A fresh estimator. ``init`` (k x d) starts k-means from given centroids."""
    rs = config.random_state
    if config.algorithm == "kmeans":
        if init is not None:
            return KMeans(k, init=init, n_init=1, max_iter=config.max_iter, random_state=rs)
        return KMeans(k, n_init=config.n_init, max_iter=config.max_iter, random_state=rs)
    if config.algorithm == "minibatch_kmeans":
        kwargs = {"init": init, "n_init": 1} if init is not None else {"n_init": config.n_init}
        return MiniBatchKMeans(
            k, batch_size=4096, max_iter=config.max_iter, random_state=rs, **kwargs
        )
    if config.algorithm == "gaussian_mixture":
        kwargs = {"means_init": init} if init is not None else {}
        return GaussianMixture(
            k, covariance_type="full", n_init=1 if init is not None else config.n_init,
            max_iter=config.max_iter, random_state=rs, **kwargs,
        )  # fmt: skip
    if config.algorithm == "ward":
        return AgglomerativeClustering(k, linkage="ward")
    return HDBSCAN(min_cluster_size=config.hdbscan_min_cluster_size, copy=True)


def fit_labels(estimator, x: np.ndarray) -> np.ndarray:
    if isinstance(estimator, GaussianMixture):
        return estimator.fit(x).predict(x)
    return estimator.fit_predict(x)


@dataclass
class KScore:
    k: int
    silhouette: float | None
    davies_bouldin: float | None
    calinski_harabasz: float | None
    inertia: float | None
    bic: float | None

    def value(self, criterion: str) -> float | None:
        return getattr(self, criterion)


def score_partition(
    x: np.ndarray, labels: np.ndarray, config: ClusteringConfig, estimator=None
) -> KScore:
    """Internal validity scores of one partition (noise points, label -1, left out)."""
    keep = labels >= 0
    xs, ls = x[keep], labels[keep]
    k = len(np.unique(ls))
    sil = db = ch = None
    if 2 <= k < len(xs):
        size = min(config.silhouette_sample_size, len(xs))
        sil = float(silhouette_score(xs, ls, sample_size=size, random_state=config.random_state))
        db = float(davies_bouldin_score(xs, ls))
        ch = float(calinski_harabasz_score(xs, ls))
    inertia = float(estimator.inertia_) if hasattr(estimator, "inertia_") else None
    bic = float(estimator.bic(x)) if isinstance(estimator, GaussianMixture) else None
    return KScore(k, sil, db, ch, inertia, bic)


def select_k(x: np.ndarray, config: ClusteringConfig) -> tuple[int, list[KScore]]:
    """Fit every k in the range on ``x`` and pick the best by the configured criterion."""
    upper = min(config.k_max, len(x) - 1)
    scores = []
    for k in range(config.k_min, upper + 1):
        estimator = make_estimator(config, k)
        labels = fit_labels(estimator, x)
        scores.append(score_partition(x, labels, config, estimator))
    usable = [s for s in scores if s.value(config.criterion) is not None]
    if not usable:
        raise ValueError(f"no k in {config.k_min}..{upper} gives a {config.criterion} score")
    sign = 1.0 if LARGER_IS_BETTER[config.criterion] else -1.0
    best = max(usable, key=lambda s: (sign * s.value(config.criterion), -s.k))
    return best.k, scores
