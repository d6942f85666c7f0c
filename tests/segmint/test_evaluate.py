import duckdb
import pytest
from typer.testing import CliRunner

from segmint.cli import app
from segmint.evaluate import score_labelled


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def _scores(con, rows):
    con.execute("create or replace table labelled (customer_id varchar, person_id int)")
    con.executemany("insert into labelled values (?, ?)", rows)
    return score_labelled(con, "select * from labelled")


def test_perfect_resolution_scores_one(con):
    s = _scores(con, [("a", 1), ("a", 1), ("b", 2), ("b", 2), ("b", 2)])
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    assert (s.over_merged_customers, s.under_merged_persons) == (0, 0)


def test_over_merge_costs_precision_and_split_costs_recall(con):
    # Customer a holds persons 1 and 2; person 3 is split over b and c.
    s = _scores(con, [("a", 1), ("a", 1), ("a", 2), ("b", 3), ("b", 3), ("c", 3)])
    # predicted pairs: a 3, b 1 -> 4; true pairs: 1 1, 3 3 -> 4; correct: (a,1) 1 + (b,3) 1 = 2
    assert (s.predicted_pairs, s.true_pairs, s.correct_pairs) == (4, 4, 2)
    assert s.precision == pytest.approx(0.5) and s.recall == pytest.approx(0.5)
    assert (s.over_merged_customers, s.under_merged_persons) == (1, 1)


def test_unplaced_records_are_counted_not_scored(con):
    s = _scores(con, [("a", 1), ("a", 1), (None, 1)])
    assert s.records == 2 and s.unplaced_records == 1 and s.recall == 1.0


def test_cli_refuses_a_folder_without_truth(tmp_path):
    result = CliRunner().invoke(
        app, ["evaluate", "identity", "--truth", str(tmp_path), "--warehouse", str(tmp_path / "w")]
    )
    assert result.exit_code == 2
    assert "holds no generator truth" in result.output
