"""The clustering step on a small generated warehouse: tables, dbt integration, SQL scoring."""

import shutil

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from ml.config import ClusteringConfig
from segmint import artifacts
from segmint.cli import app
from segmint.clusters import previous_run, run_clustering
from segmint.evaluate import evaluate_segments
from tests.warehouse.helpers import built_warehouse, dbt, frame

SEGMENT_MODELS = ("stg_ml__customer_clusters+", "customer_nearest_centroid")


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    root = tmp_path_factory.mktemp("clustering")
    warehouse, _ = built_warehouse(root, 600, seed=11)
    with duckdb.connect(str(warehouse)) as con:
        first = run_clustering(con, ClusteringConfig(), artifacts_dir=root / "ml")
        second = run_clustering(con, ClusteringConfig(), artifacts_dir=root / "ml")
    result = dbt(warehouse, root / "target", "build", "--exclude", "test_type:unit", "-s",
                 *SEGMENT_MODELS)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    return warehouse, root, first, second


def test_every_feature_row_gets_one_cluster(clustered):
    warehouse, *_ = clustered
    counts = frame(
        warehouse,
        "select (select count(*) from marts.customer_features) as features, "
        "(select count(*) from ml.customer_clusters) as clusters, "
        "(select count(distinct customer_id) from ml.customer_clusters) as customers, "
        "(select count(*) from ml.customer_clusters c left join ml.cluster_profiles p "
        " on p.run_id = c.model_version and p.segment_id = c.segment_id "
        " where p.segment_id is null) as without_profile",
    ).iloc[0]
    assert counts["features"] == counts["clusters"] == counts["customers"] > 400
    assert counts["without_profile"] == 0


def test_a_rerun_on_the_same_data_keeps_segments_and_is_recorded(clustered):
    warehouse, _, first, second = clustered
    runs = frame(warehouse, "select * from ml.segmentation_runs order by trained_at")
    assert list(runs["run_id"]) == [first.result.run["run_id"], second.result.run["run_id"]]
    assert runs["previous_run_id"].iloc[1] == runs["run_id"].iloc[0]
    assert runs["k_selection"].iloc[1] == "kept from the previous run"
    assert list(runs["preprocessing"]) == ["fitted", "kept from the previous run"]
    assert runs["switched_share"].iloc[1] <= 0.01
    assert runs["data_fingerprint"].nunique() == 1
    assert set(first.result.profiles["segment_name"]) == set(second.result.profiles["segment_name"])
    assert first.model_path.exists() and second.plots["projection"].exists()


def test_the_previous_run_reads_back_as_written(clustered):
    warehouse, _, _, second = clustered
    with duckdb.connect(str(warehouse), read_only=True) as con:
        read = previous_run(con)
    expected = second.result.as_previous()
    assert read.run_id == expected.run_id and read.k == expected.k
    assert read.prepared_names == expected.prepared_names
    assert read.names == expected.names
    assert read.max_segment_id == expected.max_segment_id
    # The saved model's preprocessing comes back with it, fitted.
    assert read.pipeline.named_steps["scale"].center_.tolist() == (
        expected.pipeline.named_steps["scale"].center_.tolist()
    )
    np.testing.assert_allclose(
        read.centroids.loc[expected.centroids.index].to_numpy(), expected.centroids.to_numpy()
    )
    assert read.assignments.sort_index().equals(expected.assignments.sort_index())


def test_the_model_comes_back_from_the_warehouse_on_a_machine_without_its_file(
    clustered, tmp_path, monkeypatch
):
    warehouse, _, _, second = clustered
    copy = tmp_path / "fresh.duckdb"
    shutil.copy(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        # A fresh worker: the model file the run recorded is not on this disk.
        con.execute("update ml.segmentation_runs set model_path = '/nowhere/model.joblib'")
        read = previous_run(con)
        expected = second.result.model.pipeline.named_steps["scale"].center_.tolist()
        assert read.pipeline.named_steps["scale"].center_.tolist() == expected
        # Stored in parts when large; the parts join back in order.
        monkeypatch.setattr(artifacts, "PART_CHARS", 1000)
        artifacts.save(con, "r1", "model.joblib", second.result.model)
        parts = con.execute(
            "select count(*) from ml.model_artifacts where run_id = 'r1'"
        ).fetchone()[0]
        assert parts > 1
        assert artifacts.load(con, "r1", "model.joblib").run_id == second.result.model.run_id
        # A damaged copy is refused, not unpickled.
        con.execute(
            "update ml.model_artifacts set content = reverse(content) "
            "where run_id = 'r1' and part = 1"
        )
        with pytest.raises(artifacts.ArtifactError, match="SHA-256"):
            artifacts.load(con, "r1", "model.joblib")
        assert artifacts.load(con, "no such run", "model.joblib") is None


def test_cluster_memberships_join_customer_segments(clustered):
    warehouse, *_ = clustered
    joined = frame(
        warehouse,
        "select s.customer_id, s.segment_name, c.segment_name as cluster_name "
        "from marts.customer_segments s full join ml.customer_clusters c "
        "on s.customer_id = c.customer_id and s.segment_type = 'cluster' "
        "where s.segment_type = 'cluster' or s.customer_id is null",
    )
    assert len(joined) > 400
    assert (joined["segment_name"] == joined["cluster_name"]).all()


def test_sql_scoring_assigns_the_same_segments_as_the_model(clustered):
    warehouse, *_ = clustered
    compared = frame(
        warehouse,
        "select count(*) as n, count(c.customer_id) as scored, "
        "sum(case when s.segment_id = c.segment_id then 1 else 0 end) as same, "
        "count(distinct s.model_version) as versions "
        "from marts.customer_nearest_centroid s "
        "left join ml.customer_clusters c using (customer_id)",
    ).iloc[0]
    assert compared["n"] == compared["scored"] == compared["same"] > 400
    assert compared["versions"] == 1


def test_sql_scoring_with_categoricals_and_pca(clustered, tmp_path):
    warehouse, *_ = clustered
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(warehouse.read_bytes())
    config = ClusteringConfig(
        categorical_features=("preferred_channel_group", "preferred_device_type"),
        pca_components=4,
        k=5,
    )
    with duckdb.connect(str(copy)) as con:
        report = run_clustering(con, config, artifacts_dir=tmp_path / "ml")
    assert len(report.result.projection) > 0
    result = dbt(copy, tmp_path / "target", "run", "-s", "customer_nearest_centroid")
    assert result.returncode == 0, result.stdout[-3000:]
    same = frame(
        copy,
        "select count(*) as n, "
        "sum(case when s.segment_id = c.segment_id then 1 else 0 end) as same "
        "from marts.customer_nearest_centroid s join ml.customer_clusters c using (customer_id)",
    ).iloc[0]
    assert same["n"] == same["same"] > 400


def test_evaluate_segments_command(clustered, tmp_path):
    warehouse, root, *_ = clustered
    truth = root / "landing" / "truth"
    scores = evaluate_segments(warehouse, truth)
    assert scores.customers > 400 and scores.archetypes == 5
    assert 0 < scores.adjusted_rand_index < 1
    assert scores.crosstab.to_numpy().sum() == scores.customers
    runner = CliRunner()
    out = runner.invoke(app, ["evaluate", "segments", "--truth", str(truth),
                              "--warehouse", str(warehouse)], terminal_width=200)  # fmt: skip
    assert out.exit_code == 0, out.output
    assert f"adjusted Rand index {scores.adjusted_rand_index:.4f}" in out.output
    missing = runner.invoke(app, ["evaluate", "segments", "--truth", str(tmp_path),
                                  "--warehouse", str(warehouse)])  # fmt: skip
    assert missing.exit_code == 2
