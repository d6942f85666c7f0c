"""The customer marts on a generated warehouse, checked against independent computations."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from segmint.load import load
from segmint.warehouse import DuckDBWarehouse
from tests.warehouse.helpers import DBT, ROOT, built_warehouse, dbt, dbt_build, frame


@pytest.fixture(scope="module")
def marts(tmp_path_factory):
    root = tmp_path_factory.mktemp("marts")
    warehouse, landing = built_warehouse(root, persons=300, seed=11)
    return warehouse, landing, root


def _scores(values: pd.Series, better_when_higher: bool) -> pd.Series:
    """The documented rule, written independently: 1 + floor(5 * strictly worse / n)."""
    v = values.to_numpy(dtype=float)
    if np.all(v == v[0]):
        return pd.Series(3, index=values.index)
    worse = np.array([(v < x).sum() if better_when_higher else (v > x).sum() for x in v])
    return pd.Series(np.minimum(5, 1 + np.floor(5 * worse / len(v))).astype(int), values.index)


def test_rfm_matches_an_independent_computation_from_the_order_fact(marts):
    warehouse, _, _ = marts
    orders = frame(warehouse, "select * from marts.fct_orders where customer_id is not null")
    fx = frame(warehouse, "select * from reference.fx_rates").set_index("currency_code")
    as_of = orders["order_date"].max()
    customers = frame(warehouse, "select customer_id from marts.dim_customers where not is_erased")
    done = orders[orders.is_completed & (orders.order_date <= as_of)].copy()
    done["amount"] = done.total_amount.astype(float) * done.currency_code.map(fx.rate_to_reporting)
    buyers = done.groupby("customer_id").agg(
        last=("order_date", "max"), frequency=("order_id", "count"), monetary=("amount", "sum")
    )
    buyers = buyers[buyers.index.isin(customers.customer_id)]
    buyers["recency_days"] = (pd.Timestamp(as_of) - pd.to_datetime(buyers["last"])).dt.days
    buyers["r_score"] = _scores(buyers.recency_days, better_when_higher=False)
    buyers["f_score"] = _scores(buyers.frequency, better_when_higher=True)
    buyers["m_score"] = _scores(buyers.monetary.round(2), better_when_higher=True)

    rfm = frame(warehouse, "select * from marts.customer_rfm").set_index("customer_id")
    assert set(rfm.index) == set(customers.customer_id)
    assert len(buyers) > 50
    got = rfm.loc[buyers.index]
    assert (got.frequency == buyers.frequency).all()
    assert np.allclose(got.monetary.astype(float), buyers.monetary, atol=0.01)
    assert (got.recency_days == buyers.recency_days).all()
    for score in ("r_score", "f_score", "m_score"):
        assert (got[score] == buyers[score]).all(), score
    prospects = rfm.drop(buyers.index)
    assert (prospects.rfm_segment == "Prospects").all() and prospects.r_score.isna().all()
    assert len(prospects) > 0
    seed = pd.read_csv(ROOT / "seeds" / "rfm_segments.csv")
    fm = np.floor((got.f_score + got.m_score + 1) / 2).astype(int)
    expected = pd.merge(
        pd.DataFrame({"r_score": got.r_score, "fm_score": fm}).reset_index(),
        seed,
        on=["r_score", "fm_score"],
    ).set_index("customer_id")
    assert (got.rfm_segment == expected.rfm_segment.loc[got.index]).all()


def _shipped_audiences() -> list[dict]:
    doc = yaml.safe_load((ROOT / "models/marts/segments/_audiences.yml").read_text())
    return doc["models"][0]["config"]["meta"]["audiences"]


def test_shipped_audiences_hold_exactly_the_customers_their_rules_describe(marts):
    warehouse, _, _ = marts
    profile = frame(warehouse, "select * from marts.customer_profile").set_index("customer_id")
    members = frame(warehouse, "select customer_id, audience_name from marts.customer_audiences")
    project = yaml.safe_load((ROOT / "dbt_project.yml").read_text())
    vip = project["vars"]["vip_order_amount"]
    p = profile
    rules = {
        "vip": p.max_order_amount.astype(float) >= vip,
        "high_value": p.orders_30d >= 3,
        "win_back": p.rfm_segment.isin(["At Risk", "Cannot Lose Them"]) & (p.m_score == 5),
        "cart_abandoners": p.is_cart_abandoner == True,  # noqa: E712
        "high_intent_browsers": p.is_high_intent_browser == True,  # noqa: E712
        "new_customer_onboarding": p.lifecycle_stage == "new",
        "price_sensitive": (p.frequency >= 2) & (p.discounted_order_share > 0.5),
    }
    # The prediction audiences are checked on a whole run (tests/orchestration/
    # test_pipeline.py); a plain `dbt build` has no predictions, so they have no members.
    on_predictions = {"churn_risk_high_value", "high_purchase_intent"}
    assert set(rules) | on_predictions == {a["name"] for a in _shipped_audiences()}
    assert not set(members.audience_name) & on_predictions
    for name, mask in rules.items():
        expected = set(p.index[mask.fillna(False)])
        actual = set(members.customer_id[members.audience_name == name])
        assert actual == expected, name
    populated = [name for name, mask in rules.items() if mask.fillna(False).any()]
    assert len(populated) >= 5, populated


def test_each_customer_has_one_rfm_and_one_lifecycle_membership(marts):
    warehouse, _, _ = marts
    segments = frame(warehouse, "select * from marts.customer_segments")
    profile = frame(warehouse, "select customer_id, is_prospect from marts.customer_profile")
    per_type = segments.groupby(["customer_id", "segment_type"]).size().unstack(fill_value=0)
    assert (per_type["lifecycle"] == 1).all() and len(per_type) == len(profile)
    buyers = set(profile.customer_id[~profile.is_prospect])
    assert set(segments.customer_id[segments.segment_type == "rfm"]) == buyers
    assert segments.segment_key.str.fullmatch(r"(rfm|rule|lifecycle)_[a-z0-9_]+").all()
    history = frame(warehouse, "select * from marts.segment_membership_history")
    assert len(history) == len(segments) and history.is_current.all()


INVALID_AUDIENCES = {
    "unknown column": (
        {"column": "lifetime_value", "op": ">", "value": 1},
        "unknown column 'lifetime_value'",
    ),
    "unknown operator": ({"column": "frequency", "op": "like", "value": "1"}, "unknown operator"),
    "quote escape": (
        {"column": "rfm_segment", "op": "=", "value": "x\\' or 1=1 --"},
        "backslash",
    ),
    "between needs two": (
        {"all": [{"column": "frequency", "op": "between", "value": [1]}]},
        "condition.all[0]: operator 'between' takes [low, high]",
    ),
    "raw sql as column": ({"column": "1=1 or frequency", "op": "is_null"}, "unknown column"),
}


@pytest.mark.parametrize("case", INVALID_AUDIENCES, ids=list(INVALID_AUDIENCES))
def test_an_invalid_audience_fails_compilation_naming_the_audience(marts, case):
    warehouse, _, root = marts
    condition, message = INVALID_AUDIENCES[case]
    audience = {"name": "bad_one", "description": "x", "priority": 1, "condition": condition}
    args = json.dumps({"audiences": [audience]})
    result = dbt(warehouse, root / "target", "run-operation", "check_audiences", "--args", args)
    assert result.returncode != 0
    assert "audience 'bad_one'" in result.stdout and message in result.stdout, result.stdout


def test_the_shipped_audiences_compile_to_sql(marts):
    warehouse, _, root = marts
    result = dbt(warehouse, root / "target", "run-operation", "check_audiences")
    assert result.returncode == 0, result.stdout
    for audience in _shipped_audiences():
        assert f"'{audience['name']}' as audience_name" in result.stdout


def test_new_events_build_incrementally_to_the_same_rows_as_a_full_refresh(marts, tmp_path):
    # On copies, so the other tests see the warehouse as first built.
    warehouse, landing, root = tmp_path / "w.duckdb", tmp_path / "landing", tmp_path
    shutil.copy(marts[0], warehouse)
    shutil.copytree(marts[1], landing)
    events = pd.read_parquet(landing / "web_events.parquet")
    late = events.sample(frac=0.01, random_state=1).copy()
    late["event_id"] = "late_" + late["event_id"]
    # Half join an existing session (7 minutes later), half start new ones (3 hours later).
    shift = np.where(np.arange(len(late)) % 2 == 0, 7, 180).astype("timedelta64[m]")
    late["occurred_at"] = (
        pd.to_datetime(late["occurred_at"], format="ISO8601") + shift
    ).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    late.to_parquet(landing / "web_events_late.parquet")
    load(landing, warehouse)
    sessions_before = frame(warehouse, "select session_id from marts.fct_sessions")
    dbt_build(warehouse, root / "target")

    sessions_sql = "select * exclude (refreshed_at) from marts.fct_sessions order by session_id"
    events_sql = "select * exclude (refreshed_at) from marts.fct_web_events order by event_id"
    incremental = frame(warehouse, sessions_sql), frame(warehouse, events_sql)
    assert len(incremental[1]) == len(events) + len(late)
    assert incremental[0].event_count.sum() == len(events) + len(late)
    assert len(set(incremental[0].session_id) - set(sessions_before.session_id)) > 0
    dbt_build(warehouse, root / "target", "--full-refresh", "--select", "fct_web_events+")
    full = frame(warehouse, sessions_sql), frame(warehouse, events_sql)
    pd.testing.assert_frame_equal(incremental[0], full[0])
    pd.testing.assert_frame_equal(incremental[1], full[1])


def test_segment_kpis_are_queryable_with_metricflow(marts, tmp_path):
    warehouse, _, _ = marts
    # mf reads the BI copy, as a BI tool does, not the warehouse a run may be writing.
    bi = DuckDBWarehouse(warehouse, bi_path=tmp_path / "bi" / warehouse.name).publish_bi_copy()
    env = {**os.environ, "SEGMINT_DUCKDB_PATH": str(bi.path), "SEGMINT_DBT_TARGET": "ci"}
    # mf reads target/semantic_manifest.json of the project, which `dbt parse` writes.
    parse = subprocess.run([DBT, "parse", "--quiet"], cwd=ROOT, env=env, capture_output=True)
    assert parse.returncode == 0, parse.stdout[-2000:]
    out = tmp_path / "kpis.csv"
    query = subprocess.run(
        [str(Path(sys.executable).parent / "mf"), "query", "--quiet", "--csv", str(out),
         "--metrics", "segment_customers,segment_revenue,segment_average_order_value",
         "--group-by", "membership__segment_type,membership__segment_name"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert query.returncode == 0, query.stdout[-2000:] + query.stderr[-2000:]
    kpis = pd.read_csv(out).rename(columns=lambda c: c.removeprefix("membership__"))
    kpis = kpis.set_index(["segment_type", "segment_name"])
    expected = frame(
        warehouse,
        """
        select s.segment_type, s.segment_name, count(*) as customers,
               sum(p.monetary) as revenue, sum(p.monetary) / sum(p.frequency) as aov
        from marts.customer_segments s join marts.customer_profile p using (customer_id)
        group by all
        """,
    ).set_index(["segment_type", "segment_name"])
    assert len(kpis) == len(expected) > 10
    joined = kpis.join(expected, how="inner")
    assert (joined.segment_customers == joined.customers).all()
    assert np.allclose(joined.segment_revenue, joined.revenue.astype(float), rtol=1e-9)
    buyers = joined.customers[joined.revenue.astype(float) > 0].index
    assert np.allclose(
        joined.loc[buyers, "segment_average_order_value"], joined.loc[buyers, "aov"].astype(float)
    )
