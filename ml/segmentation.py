"""Fit a segmentation on a sample, score everyone in chunks, keep ids stable across runs.

``fit_segmentation(features, config, previous)`` returns a ``SegmentationResult``: the saved
model (preprocessing pipeline, estimator, segment ids and names), one row per customer,
one profile per segment, the run record with every k-selection score, and the centroids
and scaling parameters that let the warehouse assign the nearest centroid in SQL.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier

from ml.config import ClusteringConfig
from ml.preprocess import (
    FeatureError,
    after_prepare,
    build_pipeline,
    categorical_frame,
    check_features,
    drop_absent_features,
    prepared_names,
)
from ml.profiles import describe, name_segments, reason_codes
from ml.selection import KScore, fit_labels, make_estimator, score_partition, select_k
from ml.stability import PreviousRun, compare_assignments, match_segments

UNASSIGNED_ID = 0
UNASSIGNED_NAME = "Unassigned"
CENTROID_ALGORITHMS = ("kmeans", "minibatch_kmeans", "ward")


@dataclass
class SegmentationModel:
    """Everything needed to score new customers the same way; saved with joblib."""

    config: ClusteringConfig
    pipeline: object
    estimator: object
    k: int
    # label index -> segment id / name; centroids in model space, by label index
    segment_ids: dict[int, int]
    segment_names: dict[int, str]
    centroids: np.ndarray
    prepared_centroids: np.ndarray
    prepared_names: list[str]
    run_id: str
    neighbours: object | None = None  # HDBSCAN: labels of new points from the fit sample
    max_segment_id: int = 0  # the highest id ever used, this run's and earlier runs'

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline.transform(categorical_frame(frame, self.config))

    def predict_labels(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Label index (-1: unassigned) and confidence in [0, 1] of points in model space."""
        if isinstance(self.estimator, GaussianMixture):
            proba = self.estimator.predict_proba(x)
            return proba.argmax(axis=1), proba.max(axis=1)
        if self.neighbours is not None:
            proba = self.neighbours.predict_proba(x)
            classes = self.neighbours.classes_
            return classes[proba.argmax(axis=1)], proba.max(axis=1)
        distances = euclidean_distances(x, self.centroids)
        if distances.shape[1] == 1:
            return np.zeros(len(x), dtype=int), np.ones(len(x))
        two = np.partition(distances, 1, axis=1)[:, :2]
        confidence = np.where(two[:, 1] > 0, 1.0 - two[:, 0] / np.maximum(two[:, 1], 1e-300), 0.0)
        return distances.argmin(axis=1), confidence

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path


@dataclass
class SegmentationResult:
    model: SegmentationModel
    assignments: pd.DataFrame
    profiles: pd.DataFrame
    run: dict
    centroids: pd.DataFrame
    scaling: pd.DataFrame
    projection: pd.DataFrame
    k_scores: list[KScore]
    # For plots: the effect matrix (segments x features) and a 2-D projection of a sample.
    effects: pd.DataFrame
    sample_2d: pd.DataFrame = field(default_factory=pd.DataFrame)

    def as_previous(self) -> PreviousRun:
        """This run as the next run's ``previous`` (what segmint.clusters reads back)."""
        model = self.model
        ids = [model.segment_ids[i] for i in range(model.k)]
        centroids = pd.DataFrame(
            model.prepared_centroids, index=pd.Index(ids, name="segment_id"),
            columns=model.prepared_names,
        )  # fmt: skip
        id_column = model.config.id_column
        return PreviousRun(
            run_id=model.run_id,
            k=model.k,
            prepared_names=list(model.prepared_names),
            centroids=centroids,
            names={model.segment_ids[i]: model.segment_names[i] for i in range(model.k)},
            assignments=self.assignments.set_index(id_column)["segment_id"],
            max_segment_id=int(model.max_segment_id),
            pipeline=model.pipeline,
        )


def fingerprint(frame: pd.DataFrame, config: ClusteringConfig) -> str:
    """Content hash of ids and features, independent of row order."""
    cols = [config.id_column, *config.feature_columns]
    hashed = pd.util.hash_pandas_object(frame[cols], index=False).to_numpy()
    return hashlib.sha256(np.sort(hashed).tobytes()).hexdigest()[:16]


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size, replace=False))


def _reusable(previous: PreviousRun | None, config: ClusteringConfig) -> bool:
    if previous is None or previous.pipeline is None or config.refit_preprocessing:
        return False
    prepare = previous.pipeline.named_steps["prepare"]
    same_inputs = list(getattr(prepare, "feature_names_in_", [])) == config.feature_columns
    steps = previous.pipeline.named_steps
    pca = steps["reduce"] != "passthrough"
    same_pca = pca == bool(config.pca_components) and (
        not pca or steps["reduce"].n_components == config.pca_components
    )
    return same_inputs and same_pca


def _min_customers(config: ClusteringConfig, previous: PreviousRun | None) -> int:
    if config.algorithm == "hdbscan":
        return 2 * config.hdbscan_min_cluster_size
    return config.k or config.k_min


def fit_segmentation(
    features: pd.DataFrame,
    config: ClusteringConfig | None = None,
    previous: PreviousRun | None = None,
    now: datetime | None = None,
) -> SegmentationResult:
    config, dropped = drop_absent_features(features, config or ClusteringConfig())
    check_features(features, config)
    n = len(features)
    needed = _min_customers(config, previous)
    if n <= needed:
        k_text = f"k={config.k}" if config.k else f"k_min={config.k_min}"
        if config.algorithm == "hdbscan":
            k_text = f"hdbscan_min_cluster_size={config.hdbscan_min_cluster_size}"
        raise FeatureError(
            f"{n:,} customers are too few to cluster with {k_text} (need at least {needed + 1})"
        )
    now = now or datetime.now(UTC)
    rng = np.random.default_rng(config.random_state)
    frame = features.reset_index(drop=True)
    x_all = categorical_frame(frame, config)

    fit_idx = _sample(n, config.fit_sample_size, rng)
    if _reusable(previous, config):
        pipeline, preprocessing = previous.pipeline, "kept from the previous run"
    else:
        pipeline, preprocessing = build_pipeline(config), "fitted"
        pipeline.fit(x_all.iloc[fit_idx])
    names = prepared_names(pipeline)
    x_fit = pipeline.transform(x_all.iloc[fit_idx])
    sel_pos = _sample(len(fit_idx), config.selection_sample_size, rng)
    x_sel = x_fit[sel_pos]

    # k: fixed, kept from the previous run, or selected; the range is scored either way.
    comparable = previous is not None and previous.prepared_names == names
    scores: list[KScore] = []
    chosen, how_k = config.k, "fixed"
    if config.algorithm == "hdbscan":
        chosen, how_k = None, "density"
    elif config.k is None:
        chosen, scores = select_k(x_sel, config)
        how_k = "selected"
        keep = comparable and not config.reselect_k and config.k_min <= previous.k <= config.k_max
        if keep:
            chosen, how_k = previous.k, "kept from the previous run"

    previous_model_space = None
    previous_ids: list[int] = []
    if comparable:
        previous_ids = [int(i) for i in previous.centroids.index]
        previous_model_space = after_prepare(pipeline, previous.centroids[names].to_numpy())

    # Fit on the sample (Ward and HDBSCAN on the smaller selection sample: they are
    # quadratic), warm-started from the previous centroids when k is unchanged.
    init = None
    if previous_model_space is not None and chosen == len(previous_ids):
        init = previous_model_space
    x_train = x_sel if config.algorithm in ("ward", "hdbscan") else x_fit
    estimator = make_estimator(
        config, chosen, init if config.algorithm not in ("ward", "hdbscan") else None
    )
    train_labels = fit_labels(estimator, x_train)
    found = sorted(int(v) for v in np.unique(train_labels) if v >= 0)
    if len(found) < 2:
        raise FeatureError(
            f"{config.algorithm} found {len(found)} segment(s) in {len(x_train):,} customers; "
            "the features do not separate groups (try other features or parameters)"
        )
    # Dense label indexes 0..k-1 (HDBSCAN and Ward already are; k-means may drop empties).
    remap = {old: new for new, old in enumerate(found)}
    train_labels = np.array([remap.get(int(v), -1) for v in train_labels])
    k = len(found)
    if isinstance(estimator, GaussianMixture):
        centroids = estimator.means_[found]
    elif hasattr(estimator, "cluster_centers_"):
        centroids = estimator.cluster_centers_[found]
    else:
        centroids = np.vstack([x_train[train_labels == i].mean(axis=0) for i in range(k)])

    neighbours = None
    if config.algorithm == "hdbscan":
        neighbours = KNeighborsClassifier(n_neighbors=5).fit(x_train, train_labels)

    model = SegmentationModel(
        config=config,
        pipeline=pipeline,
        estimator=estimator,
        k=k,
        segment_ids={},
        segment_names={},
        centroids=centroids,
        prepared_centroids=np.empty((0, 0)),
        prepared_names=names,
        run_id="",
        neighbours=neighbours,
    )
    if config.algorithm in ("gaussian_mixture",) and len(found) < estimator.n_components:
        raise FeatureError("a mixture component is empty; lower k_max")

    # Score everyone in chunks.
    labels = np.empty(n, dtype=int)
    confidence = np.empty(n)
    scaler = pipeline.named_steps["scale"]
    prepare = pipeline.named_steps["prepare"]
    numeric_pos = [names.index(f) for f in config.numeric_features]
    codes = np.empty(n, dtype=object)
    prepared_sums = np.zeros((k, len(names)))
    scaled_sums = np.zeros((k, len(names)))
    counts = np.zeros(k)
    for start in range(0, n, config.score_chunk_size):
        part = x_all.iloc[start : start + config.score_chunk_size]
        prepared = prepare.transform(part)
        scaled = scaler.transform(prepared)
        reduce = pipeline.named_steps["reduce"]
        x = scaled if reduce == "passthrough" else reduce.transform(scaled)
        lab, conf = model.predict_labels(x)
        labels[start : start + len(part)] = lab
        confidence[start : start + len(part)] = conf
        codes[start : start + len(part)] = reason_codes(
            scaled[:, numeric_pos], list(config.numeric_features), config.reason_code_count
        )
        assigned = lab >= 0
        np.add.at(prepared_sums, lab[assigned], prepared[assigned])
        np.add.at(scaled_sums, lab[assigned], scaled[assigned])
        np.add.at(counts, lab[assigned], 1)
    sizes = counts.astype(int)
    if (sizes == 0).any():
        empty = [int(i) for i in np.flatnonzero(sizes == 0)]
        raise FeatureError(f"segments {empty} have no customers after scoring; lower k_max")
    prepared_centroids = prepared_sums / counts[:, None]

    # Stable ids and names.
    next_id = (previous.max_segment_id if previous else 0) + 1
    matching = match_segments(centroids, previous_model_space, previous_ids, sizes, next_id)
    segment_ids = matching.segment_ids
    scaled_means = pd.DataFrame(scaled_sums / counts[:, None], columns=names)
    overall_scaled = pd.Series(scaled_sums.sum(axis=0) / counts.sum(), index=names)
    effect = scaled_means - overall_scaled
    kept = {
        label: previous.names[sid]
        for label, sid in matching.matched.items()
        if previous and sid in previous.names
    }
    fresh = name_segments(
        effect.drop(index=list(kept)), config.name_min_effect, taken=set(kept.values())
    )
    segment_names = {**kept, **fresh}

    fp = fingerprint(frame, config)
    # Time, data and a random part: two runs on the same data in the same second
    # (a fast machine, or two processes) still get distinct ids.
    run_id = f"{now:%Y%m%dT%H%M%S}-{fp[:8]}-{uuid.uuid4().hex[:6]}"
    model.segment_ids = segment_ids
    model.segment_names = segment_names
    model.prepared_centroids = prepared_centroids
    model.run_id = run_id
    model.max_segment_id = max([next_id - 1, *segment_ids.values()])

    ids = np.array([segment_ids[i] for i in range(k)])
    label_names = np.array([segment_names[i] for i in range(k)], dtype=object)
    unassigned = labels < 0
    safe = np.where(unassigned, 0, labels)
    assignments = pd.DataFrame(
        {
            config.id_column: frame[config.id_column].to_numpy(),
            "segment_id": np.where(unassigned, UNASSIGNED_ID, ids[safe]).astype("int64"),
            "segment_name": np.where(unassigned, UNASSIGNED_NAME, label_names[safe]),
            "confidence": np.round(confidence, 6),
            "reason_codes": codes,
            "model_version": run_id,
            "scored_at": pd.Timestamp(now).tz_convert(None),
        }
    )

    # Scores of the chosen partition on the selection sample, if it was not in the range.
    final_sel_labels, _ = model.predict_labels(x_sel)
    final_score = score_partition(x_sel, final_sel_labels, config, estimator)
    if not any(s.k == k for s in scores):
        scores = sorted([*scores, final_score], key=lambda s: s.k)

    stability = (
        compare_assignments(
            previous.assignments, assignments.set_index(config.id_column)["segment_id"]
        )
        if previous is not None
        else {"customers_compared": 0, "switched_share": None, "adjusted_rand_index": None}
    )

    profiles = _profiles(frame, labels, config, ids, label_names, sizes, effect, run_id)
    run = {
        "run_id": run_id,
        "algorithm": config.algorithm,
        "k": int(k),
        "criterion": config.criterion,
        "k_selection": how_k,
        "preprocessing": preprocessing,
        "scores": json.dumps([s.__dict__ for s in scores]),
        "silhouette": final_score.silhouette,
        "davies_bouldin": final_score.davies_bouldin,
        "calinski_harabasz": final_score.calinski_harabasz,
        "scored_rows": int(n),
        "fit_rows": len(x_train),
        "unassigned_rows": int(unassigned.sum()),
        "features": json.dumps(config.feature_columns),
        "dropped_features": json.dumps(dropped),
        "config": json.dumps(config.as_dict(), default=list),
        "data_fingerprint": fp,
        "previous_run_id": previous.run_id if previous else None,
        "matching": matching.note,
        "customers_compared": stability["customers_compared"],
        "switched_share": stability["switched_share"],
        "adjusted_rand_index_previous": stability["adjusted_rand_index"],
        "trained_at": pd.Timestamp(now).tz_convert(None),
    }
    centroids_long = pd.concat(
        [
            _long(run_id, ids, prepared_centroids, names, "prepared"),
            _long(run_id, ids, centroids, _model_dims(pipeline, names), "model"),
        ],
        ignore_index=True,
    )
    sample_2d = _projection_sample(x_fit, model, ids, rng)
    return SegmentationResult(
        model=model,
        assignments=assignments,
        profiles=profiles,
        run=run,
        centroids=centroids_long,
        scaling=scaling_table(pipeline, config, run_id),
        projection=projection_table(pipeline, run_id),
        k_scores=scores,
        effects=effect.set_axis(list(label_names)),
        sample_2d=sample_2d,
    )


def _model_dims(pipeline, names: list[str]) -> list[str]:
    reduce = pipeline.named_steps["reduce"]
    if reduce == "passthrough":
        return names
    return [f"pc{i + 1}" for i in range(reduce.n_components_)]


def _long(run_id, ids, matrix, dims, space) -> pd.DataFrame:
    k, d = matrix.shape
    return pd.DataFrame(
        {
            "run_id": run_id,
            "segment_id": np.repeat(ids, d).astype("int64"),
            "space": space,
            "dimension": np.tile(np.arange(d), k).astype("int64"),
            "dimension_name": np.tile(np.array(dims, dtype=object), k),
            "value": matrix.ravel(),
        }
    )


def _profiles(frame, labels, config, ids, label_names, sizes, effect, run_id) -> pd.DataFrame:
    numeric = frame[list(config.numeric_features)].astype(float)
    overall = numeric.mean()
    rows = []
    for label in range(len(ids)):
        members = numeric[labels == label]
        means = members.mean()
        summary = {
            f: {
                "mean": round(float(means[f]), 4),
                "median": round(float(members[f].median()), 4),
                "effect": round(float(effect.loc[label, f]), 4),
            }
            for f in config.numeric_features
        }
        summary.update(
            {
                f: {"share_vs_all": round(float(effect.loc[label, f]), 4)}
                for f in effect.columns
                if f not in config.numeric_features
            }
        )
        rows.append(
            {
                "run_id": run_id,
                "segment_id": int(ids[label]),
                "segment_name": label_names[label],
                "size": int(sizes[label]),
                "share": float(sizes[label] / len(frame)),
                "description": describe(effect.loc[label], means, overall),
                "feature_summary": json.dumps(summary),
            }
        )
    unassigned = int((labels < 0).sum())
    if unassigned:
        rows.append(
            {
                "run_id": run_id,
                "segment_id": UNASSIGNED_ID,
                "segment_name": UNASSIGNED_NAME,
                "size": unassigned,
                "share": unassigned / len(frame),
                "description": "noise: no dense group (HDBSCAN)",
                "feature_summary": "{}",
            }
        )
    return pd.DataFrame(rows).sort_values("segment_id", ignore_index=True)


def scaling_table(pipeline, config: ClusteringConfig, run_id: str) -> pd.DataFrame:
    """Per prepared column: its input, transform, imputed value, and robust center/scale.

    Enough to recompute the model space in SQL (see the dbt model customer_cluster_sql).
    """
    prepare = pipeline.named_steps["prepare"]
    scaler = pipeline.named_steps["scale"]
    rows = []
    for name, transformer, columns in prepare.transformers_:
        if name == "log":
            impute = transformer.named_steps["impute"].statistics_
            rows += [(c, "log1p", None, float(v)) for c, v in zip(columns, impute, strict=True)]
        elif name == "linear":
            rows += [
                (c, "identity", None, float(v))
                for c, v in zip(columns, transformer.statistics_, strict=True)
            ]
        elif name == "category":
            encoder = transformer.named_steps["onehot"]
            infrequent = encoder.infrequent_categories_
            for i, column in enumerate(columns):
                cats = [str(c) for c in encoder.categories_[i]]
                rare = set() if infrequent[i] is None else {str(c) for c in infrequent[i]}
                rows += [(column, "onehot", c, None) for c in cats if c not in rare]
                if rare:
                    rows.append((column, "onehot_infrequent", None, None))
    names = prepared_names(pipeline)
    frame = pd.DataFrame(rows, columns=["input_column", "transform", "category", "impute_value"])
    frame.insert(0, "position", np.arange(len(frame), dtype="int64"))
    frame.insert(1, "prepared_name", names)
    frame["frequent_categories"] = None
    for column in config.categorical_features:
        cats = frame.loc[
            (frame["input_column"] == column) & (frame["transform"] == "onehot"), "category"
        ].tolist()
        frame.loc[frame["input_column"] == column, "frequent_categories"] = json.dumps(cats)
    frame["center"] = scaler.center_
    frame["scale"] = scaler.scale_
    frame.insert(0, "run_id", run_id)
    return frame


def projection_table(pipeline, run_id: str) -> pd.DataFrame:
    """PCA components (component, position, weight) and means; empty without PCA."""
    reduce = pipeline.named_steps["reduce"]
    cols = ["run_id", "component", "position", "weight", "mean"]
    if reduce == "passthrough":
        return pd.DataFrame(columns=cols)
    c, p = reduce.components_.shape
    return pd.DataFrame(
        {
            "run_id": run_id,
            "component": np.repeat(np.arange(c), p).astype("int64"),
            "position": np.tile(np.arange(p), c).astype("int64"),
            "weight": reduce.components_.ravel(),
            "mean": np.tile(reduce.mean_, c),
        }
    )[cols]


def _projection_sample(x_fit, model: SegmentationModel, ids, rng, size: int = 3000):
    from sklearn.decomposition import PCA

    pos = _sample(len(x_fit), size, rng)
    x = x_fit[pos]
    lab, _ = model.predict_labels(x)
    dims = min(2, x.shape[1])
    xy = PCA(dims, random_state=model.config.random_state).fit_transform(x)
    if dims == 1:  # one feature left (the rest absent in this business): a strip plot
        xy = np.column_stack([xy[:, 0], np.zeros(len(xy))])
    return pd.DataFrame(
        {"x": xy[:, 0], "y": xy[:, 1], "segment_id": np.where(lab < 0, UNASSIGNED_ID, ids[lab])}
    )


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of each point (what the SQL model computes)."""
    return pairwise_distances_argmin_min(x, centroids)[0]
