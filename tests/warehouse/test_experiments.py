"""Experiments on audiences (docs/experiments.md): arms from a stable hash, balanced, kept
across runs; holdouts never activated; uplift and intervals against a hand-computed example;
the intervals' coverage on planted effects, in small form (bench/experiments.py runs it at
size)."""

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from segmint.config import DEV_PII_SALT
from segmint.experiments import Planted, arm, assignment_fraction, plant, plot_results
from segmint.privacy import store_salt
from tests.warehouse.helpers import DBT, ROOT, dbt, frame

BUYERS = {"column": "frequency", "op": ">=", "value": 1}


def _audiences(share: float, experiment_id: str = "buyers") -> list[dict]:
    return [
        {"name": "buyers", "description": "every buyer", "priority": 1, "condition": BUYERS,
         "experiment": {"id": experiment_id, "holdout_share": share, "windows": [30]}},
        {"name": "big_spenders", "description": "no experiment", "priority": 2,
         "condition": {"column": "monetary", "op": ">=", "value": 200}},
    ]  # fmt: skip


def _build(warehouse, root, variables: dict) -> None:
    result = dbt(warehouse, root / "target", "build", "--exclude", "test_type:unit",
                 "--select", "customer_audiences+", "--exclude", "snap_customer_segments+",
                 "--vars", json.dumps(variables))  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.fixture(scope="module")
def experimented(synced_source, tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    warehouse = root / "w.duckdb"
    shutil.copyfile(synced_source[0], warehouse)
    _build(warehouse, root, {"audiences_override": _audiences(0.3)})
    return warehouse, root


def test_arms_follow_the_hash_and_holdouts_never_reach_a_destination(experimented):
    warehouse, _ = experimented
    a = frame(warehouse, "select * from marts.experiment_assignments")
    members = frame(warehouse, "select customer_id from marts.customer_audiences "
                               "where audience_name = 'buyers'")  # fmt: skip
    assert set(a.customer_id) == set(members.customer_id) and len(a) > 100
    assert (a.experiment_id == "buyers").all() and (a.audience_name == "buyers").all()
    for row in a.itertuples():  # the SQL rule is the documented one, on every row
        assert row.assignment_fraction == assignment_fraction("buyers", row.customer_id)
        assert row.arm == arm("buyers", row.customer_id, 0.3)
    held = set(a.customer_id[a.arm == "holdout"])
    assert 0 < len(held) < len(a)
    tags = frame(warehouse, "select customer_id, tags from activation.crm_segment_tags")
    tagged = tags[tags.tags.str.contains("segmint_rule_buyers")]
    assert not set(tagged.customer_id) & held
    assert set(tagged.customer_id) & set(a.customer_id[a.arm == "treatment"])
    # Holdout members keep their other tags (only the audience under test is held back).
    assert tags[tags.customer_id.isin(held)].tags.str.contains("segmint_").any()


def test_arms_are_balanced_at_the_configured_share():
    ids = [f"cus_{i:07d}" for i in range(200_000)]
    for share in (0.05, 0.1, 0.5):
        held = sum(arm("exp_a", c, share) == "holdout" for c in ids)
        sd = np.sqrt(share * (1 - share) / len(ids))
        assert abs(held / len(ids) - share) < 4 * sd, (share, held)
    # Two experiments split the same customers independently.
    a = np.array([arm("exp_a", c, 0.5) == "holdout" for c in ids[:20_000]])
    b = np.array([arm("exp_b", c, 0.5) == "holdout" for c in ids[:20_000]])
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.03


def test_assignments_are_kept_across_runs_and_a_new_share_only_touches_newcomers(experimented):
    warehouse, root = experimented
    before = frame(warehouse, "select * from marts.experiment_assignments")
    _build(warehouse, root, {"audiences_override": _audiences(0.9)})
    after = frame(warehouse, "select * from marts.experiment_assignments")
    assert len(after) == len(before)  # nobody new, nobody moved
    merged = before.merge(after, on="assignment_id", suffixes=("", "_after"))
    assert (merged.arm == merged.arm_after).all() and (merged.holdout_share_after == 0.3).all()
    assert (merged.entry_date == merged.entry_date_after).all()


def test_the_global_holdout_is_never_activated(synced_source, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    shutil.copyfile(synced_source[0], warehouse)
    _build(warehouse, tmp_path, {"global_holdout_share": 0.25})
    a = frame(warehouse, "select * from marts.experiment_assignments "
                         "where experiment_id = 'global'")  # fmt: skip
    customers = frame(warehouse, "select distinct customer_id from marts.customer_segments")
    assert set(a.customer_id) == set(customers.customer_id)
    held = set(a.customer_id[a.arm == "holdout"])
    assert 0.15 < len(held) / len(a) < 0.35
    sent = frame(warehouse, "select distinct customer_id from activation.crm_segment_tags")
    assert not set(sent.customer_id) & held and len(sent) > 0


def _fresh(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        store_salt(con, DEV_PII_SALT)
    return warehouse


def _results(warehouse, tmp_path, planted: Planted):
    with duckdb.connect(str(warehouse)) as con:
        plant(con, planted)
    result = dbt(warehouse, tmp_path / "target", "build", "--select", "fx_rates",
                 "experiment_results", "--exclude", "test_type:unit", "--vars",
                 json.dumps({"audiences_override": planted.audiences_override()}))  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    return frame(warehouse, "select * from marts.experiment_results order by experiment_id")


def test_uplift_and_intervals_match_a_hand_computed_example(tmp_path):
    """Treatment: 4 members, 2 converted (one with two orders); holdout: 4 members, 1
    converted; orders on the entry day or after the window do not count."""
    warehouse = _fresh(tmp_path)
    planted = Planted(experiments=1, members=0, holdout_share=0.5)
    with duckdb.connect(str(warehouse)) as con:
        plant(con, planted)  # the relations, empty; then the example's rows
        (experiment,) = planted.experiment_ids()
        rows = [("t1", "treatment", [(3, 10.0), (9, 30.0)]), ("t2", "treatment", [(30, 20.0)]),
                ("t3", "treatment", [(0, 99.0)]), ("t4", "treatment", [(31, 99.0)]),
                ("h1", "holdout", [(1, 12.0)]), ("h2", "holdout", []), ("h3", "holdout", []),
                ("h4", "holdout", [])]  # fmt: skip
        for customer, group, orders in rows:
            con.execute("insert into marts.experiment_assignments by name select ? as "
                        "assignment_id, ? as experiment_id, ? as audience_name, ? as "
                        "customer_id, ? as arm, 0.5 as holdout_share, ? as entry_date, "
                        "0.0 as assignment_fraction",
                        [f"{experiment}:{customer}", experiment, experiment, customer, group,
                         planted.entry])  # fmt: skip
            for day, amount in orders:
                con.execute("insert into marts.fct_orders by name select ? as order_id, ? as "
                            "customer_id, ? as ordered_at, ? as total_amount, cast(? as date) "
                            "as order_date, true as is_completed, 'USD' as currency_code, "
                            "'completed' as order_status",
                            [f"{customer}{day}", customer, planted.entry, amount,
                             planted.entry + timedelta(days=day)])  # fmt: skip
        con.execute("insert into marts.dim_customers select distinct customer_id, false "
                    "from marts.experiment_assignments")  # fmt: skip
        # An erased member drops out of both arms, with whatever they bought.
        con.execute("insert into marts.experiment_assignments by name select 'x:gone' as "
                    "assignment_id, ? as experiment_id, 'treatment' as arm, 'gone' as "
                    "customer_id, ? as entry_date", [experiment, planted.entry])  # fmt: skip
        con.execute("insert into marts.dim_customers values ('gone', true)")
        # An id merged away into another customer (no longer in dim_customers) drops out too;
        # its orders now belong to the survivor.
        con.execute("insert into marts.experiment_assignments by name select 'x:merged' as "
                    "assignment_id, ? as experiment_id, 'holdout' as arm, 'merged' as "
                    "customer_id, ? as entry_date", [experiment, planted.entry])  # fmt: skip
        for customer in ("gone", "merged"):
            con.execute("insert into marts.fct_orders by name select ? as order_id, ? as "
                        "customer_id, cast(? as date) as order_date, 5.0 as total_amount, "
                        "true as is_completed, 'USD' as currency_code",
                        [customer, customer, planted.entry + timedelta(days=2)])  # fmt: skip
    result = dbt(warehouse, tmp_path / "target", "build", "--select", "fx_rates",
                 "experiment_results", "--exclude", "test_type:unit", "--vars",
                 json.dumps({"audiences_override": planted.audiences_override()}))  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    r = frame(warehouse, "select * from marts.experiment_results").iloc[0]
    assert (r.treatment_members, r.holdout_members) == (4, 4)
    assert (r.treatment_conversions, r.holdout_conversions) == (2, 1)
    assert r.conversion_uplift == pytest.approx(0.25)
    se = np.sqrt(0.5 * 0.5 / 4 + 0.25 * 0.75 / 4)  # 0.330719
    assert r.conversion_uplift_ci_low == pytest.approx(0.25 - 1.959964 * se, abs=1e-6)
    assert r.conversion_uplift_ci_high == pytest.approx(0.25 + 1.959964 * se, abs=1e-6)
    z = 0.25 / np.sqrt(0.375 * 0.625 * 0.5)  # pooled
    assert r.conversion_p_value == pytest.approx(2 * stats.norm.sf(z), abs=1e-6)
    assert r.relative_conversion_uplift == pytest.approx(1.0)
    revenue_t, revenue_h = np.array([40.0, 20.0, 0, 0]), np.array([12.0, 0, 0, 0])
    assert r.treatment_revenue_per_member == pytest.approx(15.0)
    assert r.revenue_uplift == pytest.approx(12.0)
    se_r = np.sqrt(revenue_t.var(ddof=1) / 4 + revenue_h.var(ddof=1) / 4)
    assert r.revenue_uplift_ci_low == pytest.approx(12.0 - 1.959964 * se_r, abs=1e-5)
    assert r.treatment_orders_per_member == pytest.approx(0.75)
    # Fleiss: the holdout needed for +2 points over 25% with arms of equal size.
    p1, p2 = 0.25, 0.27
    need = (1.959964 * np.sqrt(2 * 0.26 * 0.74) + 0.841621 * np.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
            ) ** 2 / 0.02**2  # fmt: skip
    assert r.required_holdout_members == int(np.ceil(need)) and not r.is_readable
    with duckdb.connect(str(warehouse), read_only=True) as con:
        plots = plot_results(con)
    assert list(plots) == [experiment] and plots[experiment].startswith(b"\x89PNG")

    # The same uplift through the semantic layer, as a BI tool or `mf query` gets it.
    env = {**os.environ, "SEGMINT_DUCKDB_PATH": str(warehouse), "SEGMINT_DBT_TARGET": "ci"}
    parse = subprocess.run([DBT, "parse", "--quiet", "--target-path", str(tmp_path / "mf")],
                           cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert parse.returncode == 0, parse.stdout[-2000:]
    shutil.copyfile(tmp_path / "mf" / "semantic_manifest.json",
                    ROOT / "target" / "semantic_manifest.json")  # fmt: skip
    out = tmp_path / "uplift.csv"
    query = subprocess.run(
        [str(Path(sys.executable).parent / "mf"), "query", "--quiet", "--csv", str(out),
         "--metrics", "experiment_conversion_uplift,experiment_treatment_conversion_rate",
         "--group-by", "experiment_window__experiment_id"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert query.returncode == 0, query.stdout[-2000:] + query.stderr[-2000:]
    got = pd.read_csv(out).iloc[0]
    assert got.experiment_conversion_uplift == pytest.approx(0.25)
    assert got.experiment_treatment_conversion_rate == pytest.approx(0.5)


def test_intervals_cover_a_planted_effect_and_rarely_flag_none(tmp_path):
    """Small form of bench/experiments.py: 40 experiments of 2,000 members each."""
    warehouse = _fresh(tmp_path)
    planted = Planted(experiments=40, members=2000, lift=0.03, seed=1)
    r = _results(warehouse, tmp_path, planted)
    covered = ((r.conversion_uplift_ci_low <= 0.03) & (r.conversion_uplift_ci_high >= 0.03)).sum()
    assert covered >= 34, covered  # P(at most 33 of 40 | 95% coverage) < 0.1%
    null = _results(warehouse, tmp_path, Planted(experiments=40, members=2000, lift=0.0, seed=2))
    flagged = (null.conversion_p_value < 0.05).sum()
    assert flagged <= 6, flagged  # P(7 or more of 40 | 5% level) < 0.5%
