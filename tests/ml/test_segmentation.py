"""The clustering library on small frames: k recovery, stable ids, determinism, edge cases."""

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from ml.config import ClusteringConfig
from ml.plots import write_plots
from ml.preprocess import FeatureError
from ml.profiles import name_segments, reason_codes
from ml.segmentation import UNASSIGNED_ID, fit_segmentation
from ml.stability import match_segments

FEATURES = ("spend", "visits", "share")


def blobs(n=1200, centers=4, seed=0, spread=0.6):
    x, truth = make_blobs(
        n_samples=n, centers=centers, n_features=3, cluster_std=spread,
        center_box=(-15, 15), random_state=seed,
    )  # fmt: skip
    frame = pd.DataFrame(x, columns=list(FEATURES))
    frame.insert(0, "customer_id", [f"c{i:05d}" for i in range(n)])
    return frame, truth


def config(**kw):
    base = dict(log_features=(), linear_features=FEATURES, categorical_features=(), k_min=2)
    return ClusteringConfig(**{**base, **kw})


def test_well_separated_blobs_recover_k_and_the_groups():
    frame, truth = blobs(centers=4)
    result = fit_segmentation(frame, config(k_max=7))
    assert result.run["k"] == 4
    assert result.run["k_selection"] == "selected"
    assert adjusted_rand_score(truth, result.assignments["segment_id"]) > 0.99
    # Every k of the range was scored and recorded.
    assert [s.k for s in result.k_scores] == [2, 3, 4, 5, 6, 7]
    assert all(s.silhouette is not None and s.inertia is not None for s in result.k_scores)


def test_each_criterion_is_honoured():
    frame, _ = blobs(centers=4)
    for criterion in ("davies_bouldin", "calinski_harabasz"):
        result = fit_segmentation(frame, config(k_max=7, criterion=criterion))
        values = {s.k: getattr(s, criterion) for s in result.k_scores}
        best = (
            min(values, key=values.get)
            if criterion == "davies_bouldin"
            else max(values, key=values.get)
        )
        assert result.run["k"] == best
    gmm = config(k_max=6, algorithm="gaussian_mixture", criterion="bic")
    mixture = fit_segmentation(frame, gmm)
    bics = {s.k: s.bic for s in mixture.k_scores}
    assert mixture.run["k"] == min(bics, key=bics.get)
    assert mixture.assignments["confidence"].between(0, 1).all()


def test_same_data_and_config_give_identical_results():
    frame, _ = blobs(seed=3)
    a = fit_segmentation(frame, config(k_max=6, random_state=11))
    b = fit_segmentation(frame, config(k_max=6, random_state=11))
    cols = ["customer_id", "segment_id", "segment_name", "confidence", "reason_codes"]
    pd.testing.assert_frame_equal(a.assignments[cols], b.assignments[cols])
    assert a.run["data_fingerprint"] == b.run["data_fingerprint"]


def test_runs_on_the_same_data_at_the_same_instant_get_distinct_ids():
    frame, _ = blobs(n=300, seed=5)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    a = fit_segmentation(frame, config(k=3), now=now)
    b = fit_segmentation(frame, config(k=3), now=now)
    assert a.run["data_fingerprint"] == b.run["data_fingerprint"]
    assert a.run["run_id"] != b.run["run_id"]
    assert a.run["run_id"].startswith("20260102T030405-" + a.run["data_fingerprint"][:8])


def test_a_permuted_rerun_keeps_every_customer_in_its_segment():
    frame, _ = blobs(seed=5)
    first = fit_segmentation(frame, config(k_max=6))
    shuffled = frame.sample(frac=1.0, random_state=9)
    # Another random state: the raw k-means labels come out in another order.
    second = fit_segmentation(
        shuffled, config(k_max=6, random_state=99, reselect_k=True), first.as_previous()
    )
    joined = first.assignments.merge(second.assignments, on="customer_id")
    assert (joined["segment_id_x"] == joined["segment_id_y"]).all()
    assert (joined["segment_name_x"] == joined["segment_name_y"]).all()
    assert second.run["switched_share"] == 0.0
    assert second.run["adjusted_rand_index_previous"] == 1.0
    assert second.run["data_fingerprint"] == first.run["data_fingerprint"]


def test_preprocessing_is_reused_unless_refit_or_the_features_change():
    frame, _ = blobs(seed=5)
    first = fit_segmentation(frame, config(k=4))
    moved = frame.assign(spend=frame["spend"] + 3.0)  # the median shifts
    kept = fit_segmentation(moved, config(k=4), first.as_previous())
    assert kept.run["preprocessing"] == "kept from the previous run"
    assert kept.model.pipeline is first.model.pipeline
    refit = fit_segmentation(moved, config(k=4, refit_preprocessing=True), first.as_previous())
    assert refit.run["preprocessing"] == "fitted"
    center = refit.model.pipeline.named_steps["scale"].center_[0]
    assert center == pytest.approx(first.model.pipeline.named_steps["scale"].center_[0] + 3.0)
    other = fit_segmentation(frame, config(k=4, linear_features=("spend", "visits")),
                             first.as_previous())  # fmt: skip
    assert other.run["preprocessing"] == "fitted"
    assert other.run["matching"] == "no comparable previous run: every segment is new"


def test_hungarian_matching_pairs_permuted_centroids():
    previous = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    new = previous[[2, 0, 1]] + 0.1
    matching = match_segments(new, previous, [7, 8, 9], np.array([5, 5, 5]), next_id=10)
    assert matching.segment_ids == {0: 9, 1: 7, 2: 8}


def test_a_new_segment_gets_a_new_id_and_matched_ones_keep_theirs():
    frame, truth = blobs(centers=4, seed=2)
    three = frame[truth != 3]
    first = fit_segmentation(three, config(k=3))
    second = fit_segmentation(frame, config(k=4), first.as_previous())
    old = first.assignments.merge(second.assignments, on="customer_id")
    assert (old["segment_id_x"] == old["segment_id_y"]).mean() > 0.99
    new_ids = set(second.assignments.loc[truth == 3, "segment_id"])
    assert new_ids == {4}
    assert second.model.max_segment_id == 4


def test_retired_ids_are_not_reused():
    frame, _ = blobs(centers=4, seed=2)
    first = fit_segmentation(frame, config(k=4))
    previous = first.as_previous()
    previous.max_segment_id = 12  # ids up to 12 were used by earlier runs
    previous.centroids = previous.centroids.iloc[:2]  # only two segments left to match
    second = fit_segmentation(frame, config(k=4), previous)
    assert sorted(set(second.assignments["segment_id"]) - set(previous.centroids.index)) == [13, 14]


def test_hdbscan_puts_noise_in_an_unassigned_group():
    frame, _ = blobs(n=900, centers=3, seed=4, spread=0.4)
    rng = np.random.default_rng(0)
    noise = pd.DataFrame(rng.uniform(-30, 30, (40, 3)), columns=list(FEATURES))
    noise.insert(0, "customer_id", [f"n{i:03d}" for i in range(40)])
    result = fit_segmentation(
        pd.concat([frame, noise], ignore_index=True),
        config(algorithm="hdbscan", hdbscan_min_cluster_size=30),
    )
    assert result.run["k"] == 3
    unassigned = result.assignments[result.assignments["segment_id"] == UNASSIGNED_ID]
    assert len(unassigned) >= 20
    assert set(unassigned["segment_name"]) == {"Unassigned"}
    assert unassigned["customer_id"].str.startswith("n").mean() > 0.9
    assert UNASSIGNED_ID in set(result.profiles["segment_id"])


def test_ward_on_a_sample_scores_everyone():
    frame, truth = blobs(n=3000, centers=4, seed=6)
    result = fit_segmentation(frame, config(algorithm="ward", k=4, selection_sample_size=800))
    assert result.run["fit_rows"] == 800
    assert len(result.assignments) == 3000
    assert adjusted_rand_score(truth, result.assignments["segment_id"]) > 0.99


def test_log_transform_categoricals_and_pca_run_in_one_pipeline():
    frame, truth = blobs(centers=3, seed=8)
    frame["orders"] = np.where(truth == 0, 40, 1) + np.arange(len(frame)) % 3
    frame["channel"] = np.where(truth == 1, "email", "organic")
    frame.loc[::97, "channel"] = None
    cfg = config(log_features=("orders",), categorical_features=("channel",), pca_components=3, k=3)
    result = fit_segmentation(frame, cfg)
    assert adjusted_rand_score(truth, result.assignments["segment_id"]) > 0.99
    transforms = result.scaling.set_index("prepared_name")["transform"].to_dict()
    assert transforms["orders"] == "log1p"
    assert transforms["channel=email"] == "onehot"
    assert len(result.projection) == 3 * len(result.scaling)
    dims = result.centroids.query("space == 'model'")["dimension_name"].unique().tolist()
    assert dims == ["pc1", "pc2", "pc3"]


def test_names_are_readable_and_unique():
    effect = pd.DataFrame(
        {
            "monetary": [2.0, 2.0, -1.0],
            "recency_days": [-1.0, -1.0, 1.5],
            "tenure_days": [0, 0.1, 0],
        }
    )
    names = name_segments(effect, min_effect=0.35, taken=set())
    assert names[0] == "High spend, recent"
    assert names[2] == "Lapsed, low spend"
    assert len(set(names.values())) == 3


def test_reason_codes_name_the_most_distinctive_features():
    scaled = np.array([[0.1, 3.0, -0.5], [-2.0, 0.2, 0.1]])
    codes = reason_codes(scaled, ["monetary", "frequency", "recency_days"], 2)
    assert list(codes) == ["high frequency, low recency_days", "low monetary, high frequency"]


def test_profiles_describe_every_segment():
    frame, _ = blobs(seed=1)
    result = fit_segmentation(frame, config(k=4))
    profiles = result.profiles
    assert profiles["size"].sum() == len(frame)
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert profiles["segment_name"].is_unique
    assert (profiles["description"].str.len() > 0).all()
    counts = result.assignments["segment_id"].value_counts()
    assert dict(zip(profiles["segment_id"], profiles["size"], strict=True)) == counts.to_dict()


def test_plots_are_png_files(tmp_path):
    frame, _ = blobs(seed=1)
    result = fit_segmentation(frame, config(k_max=5))
    paths = write_plots(result, tmp_path)
    assert set(paths) == {"k_selection", "profile_heatmap", "projection"}
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5_000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.head(3), "too few to cluster"),
        (lambda f: f.assign(visits=2.0, spend=np.nan, share=0.5), "no configured feature"),
        (lambda f: f.drop(columns="share"), "missing feature columns: share"),
        (lambda f: f.assign(spend="x"), "'spend' is not numeric"),
        (lambda f: pd.concat([f, f.head(1)]), "duplicate customer_id"),
    ],
)
def test_clear_errors(change, message):
    frame, _ = blobs(n=200)
    with pytest.raises(FeatureError, match=message):
        fit_segmentation(change(frame), config(k_min=3, k_max=4))


def test_features_the_business_lacks_are_left_out_and_recorded():
    frame, truth = blobs(centers=4)
    lacking = frame.assign(visits=0.0, spend=np.nan)  # no events, no orders
    with_share = lacking.assign(share=frame["share"])
    result = fit_segmentation(with_share, config(k=4))
    assert json.loads(result.run["features"]) == ["share"]
    dropped = json.loads(result.run["dropped_features"])
    assert set(dropped) == {"visits", "spend"}
    assert "missing for all 1,200" in dropped["spend"] and "same value" in dropped["visits"]
    # A business with every feature: nothing dropped, the same result as before.
    full = fit_segmentation(frame, config(k=4))
    assert json.loads(full.run["dropped_features"]) == {}
    assert adjusted_rand_score(truth, full.assignments["segment_id"]) > 0.99


def test_configuration_errors():
    with pytest.raises(ValueError, match="algorithm 'dbscan'"):
        ClusteringConfig(algorithm="dbscan")
    with pytest.raises(ValueError, match="needs algorithm 'gaussian_mixture'"):
        ClusteringConfig(criterion="bic")
    with pytest.raises(ValueError, match="listed twice"):
        ClusteringConfig(log_features=("monetary",), linear_features=("monetary",))
