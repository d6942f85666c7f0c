"""Any subset of sources runs green: real Dagster runs on public data and on the generator.

- CDNOW (tests/data): a real shop's orders and nothing else. RFM, lifecycle and clusters on
  order features must be built; the suites of the absent sources are skipped visibly.
- FEBRL (tests/data): a CRM export and nothing else, no email column filled. Identity and
  the customer dimension must be built.
- The generator with each source removed (two sources at a time where their models differ).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml import clv
from orchestration.run import summarize
from segmint.datasets import landing_from_cdnow, landing_from_febrl
from segmint.generate import GeneratorConfig, generate
from segmint.quality.validate import SKIPPED_EMPTY
from segmint.sync.config import load_destinations
from tests.orchestration.test_pipeline import _materialize, _point_sync_at

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def crm():
    from segmint.sync.emulator import CrmEmulator

    with CrmEmulator() as emulator:
        yield emulator


def _run(landing: Path, root: Path, crm, monkeypatch):
    """A whole run; crm=None: no CRM configured at all (the destinations' variables unset)."""
    warehouse = root / "w.duckdb"
    if crm is None:
        for destination in load_destinations():
            for var in destination.required_env:
                monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("SEGMINT_EXPORT_DIR", str(root / "exports"))
    else:
        _point_sync_at(crm, landing, monkeypatch, root / "exports")
    result = _materialize(landing, warehouse, monkeypatch)
    summary = summarize(result)
    assert result.success, (summary.failed_steps, summary.checks_failed)
    assert summary.checks_failed == []
    return result, warehouse


def _skipped_checks(result) -> set[str]:
    return {
        e.check_name
        for e in result.get_asset_check_evaluations()
        if e.passed and "skipped" in e.metadata and e.metadata["skipped"].value == SKIPPED_EMPTY
    }


def _q(warehouse: Path, sql: str):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_orders_only_public_cdnow_runs_green(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    assert landing_from_cdnow(DATA / "cdnow_sample.txt", landing) == 6919
    # No CRM is configured either: the run is green and says which destinations it skipped.
    result, warehouse = _run(landing, tmp_path, None, monkeypatch)
    assert summarize(result).not_configured == ["hubspot", "salesforce", "webhook"]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "sync/file_export" in materialized and "sync/hubspot" not in materialized

    assert _skipped_checks(result) == {
        "gx_stg_crm__contacts",
        "gx_stg_web__events",
        "gx_stg_support__tickets",
        "gx_stg_privacy__consent_events",
        "gx_crm_segment_tags",  # no emails, no consent: nothing to send
    }
    # The published sample: 2,357 customers, every one with a lifecycle stage and RFM.
    assert _q(warehouse, "select count(*) from marts.customer_rfm")[0][0] == 2357
    stages = dict(_q(warehouse, "select segment_type, count(distinct customer_id) "
                                "from marts.customer_segments group by all"))  # fmt: skip
    assert stages["lifecycle"] == 2357 and stages["rfm"] == 2357
    assert stages["cluster"] == 2357
    # A mature base is mostly churned, correctly, and that is not a degenerate output.
    churned = _q(
        warehouse,
        "select count(*) from marts.customer_segments "
        "where segment_type = 'lifecycle' and segment_name = 'churned'",
    )
    assert churned[0][0] / 2357 > 0.6
    # Features the business does not have are left out of clustering, and recorded.
    features, dropped = _q(warehouse, "select features, dropped_features "
                                      "from ml.segmentation_runs")[0]  # fmt: skip
    dropped = json.loads(dropped)
    assert {"days_since_last_visit", "engagement_score"} <= set(dropped)
    assert {"recency_days", "frequency", "monetary"} <= set(json.loads(features))
    assert not set(dropped) & set(json.loads(features))

    # Lifetime value (ml/clv.py) on the orders as the pipeline built them: the published
    # BG/NBD and Gamma-Gamma parameters of this sample (Fader, Hardie and Lee 2005), with
    # calibration to 1997-09-30 (39 weeks), within 1% each.
    with duckdb.connect(str(warehouse), read_only=True) as con:
        orders = con.execute(
            "select customer_id, ordered_at, cast(total_amount as double) as amount "
            "from marts.fct_orders where is_completed"
        ).df()
    summary = clv.summarize(orders, pd.Timestamp("1997-09-30"))
    bg, gg = clv.fit_bgnbd(summary), clv.fit_gamma_gamma(summary)
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426,
                 "p": 6.25, "q": 3.74, "v": 15.44}  # fmt: skip
    fitted = {**{k: getattr(bg, k) for k in ("r", "alpha", "a", "b")},
              **{k: getattr(gg, k) for k in ("p", "q", "v")}}  # fmt: skip
    for name, value in published.items():
        assert abs(fitted[name] / value - 1) < 0.01, (name, fitted[name], value)
    assert bg.customers == 2357 and gg.customers == 946
    # The holdout, weeks 40-78: predicted against actual repeat purchase days.
    held = orders[orders.ordered_at > pd.Timestamp("1997-09-30 23:59:59")]
    actual = (held.assign(day=held.ordered_at.dt.normalize()).groupby("customer_id").day
              .nunique().reindex(summary.index).fillna(0))  # fmt: skip
    predicted = bg.expected_purchases(39.0, summary.frequency, summary.recency, summary["T"])
    mae = float(abs(predicted - actual).mean())
    print(f"CDNOW holdout: {actual.sum():.0f} actual, {predicted.sum():.0f} predicted repeat "
          f"purchase days in weeks 40-78; mean absolute error {mae:.3f} per customer")  # fmt: skip
    assert 0.8 < predicted.sum() / actual.sum() < 1.2
    # The tracking plot's curve (FHL 2005, figure 2): cumulative repeat purchase days by week,
    # expected from the calibration fit, against actual, through the holdout to week 78.
    track = clv.tracking(orders, pd.Timestamp("1998-06-30"), bg).set_index("week")
    assert len(track) == 78 and track.actual.is_monotonic_increasing
    for week in (39, 78):
        assert abs(track.expected[week] / track.actual[week] - 1) < 0.05, track.loc[week]
    # The pipeline's own lifetime value step (as of the last order date): every customer.
    runs = _q(warehouse, "select customers, repeat_buyers, skipped from ml.prediction_runs")
    assert runs == [(2357, runs[0][1], None)] and runs[0][1] > 900
    bounded, valued = _q(
        warehouse,
        "select min(probability_alive) >= 0 and max(probability_alive) <= 1, "
        "sum(predicted_clv) > 0 from ml.customer_predictions",
    )[0]
    assert bounded and valued
    # Churn and purchase propensity on a real shop's orders alone: both beat the plain RFM
    # score out of time (AUC and Brier score), on the same customers and split.
    runs = _q(warehouse, "select model, skipped, backtest, baseline, training_rows "
                         "from ml.propensity_runs order by model")  # fmt: skip
    assert [r[0] for r in runs] == ["churn", "purchase"]
    for model, skipped, backtest, baseline, training_rows in runs:
        backtest, baseline = json.loads(backtest), json.loads(baseline)
        print(f"CDNOW {model}: AUC {backtest['auc']:.3f} (RFM {baseline['auc']:.3f}), Brier "
              f"{backtest['brier']:.4f} ({baseline['brier']:.4f}), log loss "
              f"{backtest['log_loss']:.4f} ({baseline['log_loss']:.4f}), top-decile lift "
              f"{backtest['top_decile_lift']:.2f} ({baseline['top_decile_lift']:.2f})")  # fmt: skip
        assert skipped is None and backtest["rows"] == baseline["rows"] == 2357
        assert training_rows == 4 * 2357  # four stacked cut-offs, every customer in each
        assert backtest["auc"] > baseline["auc"] and backtest["brier"] < baseline["brier"]
    scored = _q(warehouse, "select count(churn_probability), count(purchase_probability_30d) "
                           "from ml.customer_predictions")  # fmt: skip
    assert scored == [(2357, 2357)]


def test_contacts_only_public_febrl_runs_green(tmp_path, crm, monkeypatch):
    landing = tmp_path / "landing"
    assert landing_from_febrl([DATA / "febrl1.csv"], landing) == 1000
    result, warehouse = _run(landing, tmp_path, crm, monkeypatch)

    skipped = _skipped_checks(result)
    assert {"gx_stg_shop__orders", "gx_stg_web__events"} <= skipped
    assert "gx_stg_crm__contacts" not in skipped
    loaded = _q(warehouse, "select count(*) from staging.stg_crm__contacts")[0][0]
    assert loaded == 1000
    customers = _q(warehouse, "select count(*) from marts.dim_customers")[0][0]
    # 500 originals and 500 duplicates: identity merges some, never below the 500 persons.
    assert 500 <= customers < 1000
    identities = _q(warehouse, "select count(*) from marts.dim_customer_identities")[0][0]
    assert identities >= 1000
    # Every customer has a lifecycle stage (prospects), none is lost on the way.
    lifecycle = _q(warehouse, "select count(distinct customer_id) from marts.customer_segments "
                              "where segment_type = 'lifecycle'")[0][0]  # fmt: skip
    assert lifecycle == customers
    # No orders: the lifetime value step says why it predicted nothing, and the run is green.
    assert _q(warehouse, "select skipped from ml.prediction_runs") == [
        ("no completed orders of known customers",)
    ]
    assert _q(warehouse, "select count(*) from ml.customer_predictions") == [(0,)]
    skipped = dict(_q(warehouse, "select model, skipped from ml.propensity_runs"))
    assert "0 positive" in skipped["churn"] and "0 positive" in skipped["purchase"]


# Every source is left out in one run; sources whose absence touches different models share
# a run (each whole run costs minutes).
SOURCES = {
    "no web events, no tickets": ["web_events", "support_tickets"],
    "no contacts": ["crm_contacts"],
    "no orders, no consent": ["orders", "order_items", "consent_events"],
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    # seed 1 with 1% broken rows has a contact created a day after the latest order.
    return generate(
        GeneratorConfig(300, seed=1, out=tmp_path_factory.mktemp("gen") / "l", messiness=0.01)
    ).out


@pytest.mark.parametrize("removed", SOURCES, ids=list(SOURCES))
def test_the_generator_without_one_source_runs_green(generated, removed, tmp_path, crm,
                                                     monkeypatch):  # fmt: skip
    landing = tmp_path / "landing"
    shutil.copytree(generated, landing)
    for table in SOURCES[removed]:
        (landing / f"{table}.parquet").unlink()
    result, warehouse = _run(landing, tmp_path, crm, monkeypatch)
    skipped = _skipped_checks(result)
    for table in SOURCES[removed]:
        if table != "order_items":
            assert any(table.split("_")[-1] in check for check in skipped), skipped
    customers = _q(warehouse, "select count(*) from marts.dim_customers")[0][0]
    assert customers > 0
    assert _q(warehouse, "select min(tenure_days) from marts.customer_features")[0][0] >= 0
    if "orders" not in SOURCES[removed]:
        assert _q(warehouse, "select count(*) from marts.customer_rfm")[0][0] > 0
        assert _q(warehouse, "select count(*) from ml.customer_clusters")[0][0] > 0
