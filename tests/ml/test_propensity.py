"""Churn and purchase propensity (ml/propensity.py) on small frames: point-in-time features,
label windows, no leakage, determinism, clear skips, and a planted mechanism found.

The pipeline's own run (generated data) and the public CDNOW sample are covered in
tests/orchestration/test_pipeline.py and tests/orchestration/test_source_subsets.py."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ml.config import PropensityConfig
from ml.propensity import (
    DAY,
    FEATURES,
    Activity,
    decile_table,
    features_at,
    fingerprint,
    metrics,
    permutation_importances,
    purchased_within,
    rfm_scores,
    run_model,
    score,
)

AS_OF = pd.Timestamp("2026-06-30")
FAST = PropensityConfig(max_iter=40, importance_repeats=1, importance_sample=500)


def _ts(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601")


def test_features_use_only_what_happened_by_the_cutoff_day():
    activity = Activity(
        customers=pd.DataFrame({"customer_id": ["a", "b", "late"],
                                "first_seen_at": _ts(["2026-01-01", "2026-05-01", "2026-07-01"])}),
        orders=pd.DataFrame({
            "customer_id": ["a", "a", "a", "a", "b"],
            "ordered_at": _ts(["2026-01-10", "2026-01-10 18:00", "2026-04-02", "2026-06-30 23:00",
                               "2026-07-01"]),
            "amount": [10.0, 5.0, 20.0, 30.0, 99.0],
            "is_discounted": [True, False, False, False, False],
        }),
        sessions=pd.DataFrame({"customer_id": ["a", "b", "b"],
                               "started_at": _ts(["2026-06-20", "2026-03-01", "2026-07-02"]),
                               "has_cart_add": [True, False, True]}),
        tickets=pd.DataFrame({"customer_id": ["b", "b"],
                              "created_at": _ts(["2026-06-01", "2026-07-01"]),
                              "is_negative": [True, True]}),
    )  # fmt: skip
    f = features_at(activity, AS_OF)
    assert list(f.columns) == list(FEATURES)
    assert list(f.index) == ["a", "b"]  # "late" was first seen after the cut-off
    a, b = f.loc["a"], f.loc["b"]
    assert a.recency_days == 0 and a.days_since_first_order == 171  # 23:00 on the day counts
    assert a.order_days == 3 and a.monetary == 65.0 and a.orders_90d == 2 and a.orders_30d == 1
    assert a.discounted_order_share == pytest.approx(0.25)
    assert a.mean_days_between_orders == pytest.approx(171 / 2)
    assert a.sessions_30d == 1 and a.cart_sessions_30d == 1 and a.days_since_last_visit == 10
    # b's order, session and ticket of July are after the cut-off: not seen.
    assert b.order_days == 0 and np.isnan(b.recency_days) and b.monetary == 0
    assert b.sessions_30d == 0 and b.sessions_30_to_90d == 0 and b.days_since_last_visit == 121
    assert b.tickets_90d == 1 and b.negative_tickets_90d == 1 and b.days_since_negative_ticket == 29


def test_activity_of_unknown_customers_is_left_out_and_ids_keep_their_names():
    """features_at works on integer positions internally; what comes out is keyed by id."""
    activity = Activity(
        customers=pd.DataFrame({"customer_id": ["z9", "a1"],
                                "first_seen_at": _ts(["2026-01-01", "2026-01-01"])}),
        orders=pd.DataFrame({"customer_id": ["a1", "ghost", "z9", "z9"],
                             "ordered_at": _ts(["2026-06-01", "2026-06-01", "2026-06-10",
                                                "2026-06-20"]),
                             "amount": [10.0, 500.0, 7.0, 8.0],
                             "is_discounted": [False, True, False, False]}),
    )  # fmt: skip
    f = features_at(activity, AS_OF)
    assert f.index.name == "customer_id" and list(f.index) == ["a1", "z9"]
    assert f.loc["a1", "monetary"] == 10.0 and f.loc["z9", "monetary"] == 15.0
    assert f["monetary"].sum() == 25.0  # the ghost's order belongs to no known customer


def test_label_window_starts_the_day_after_the_cutoff_and_lasts_its_days():
    orders = pd.DataFrame({
        "customer_id": ["on_cutoff", "first_day", "last_day", "day_after"],
        "ordered_at": _ts(["2026-06-30 22:00", "2026-07-01", "2026-07-30 23:59", "2026-07-31"]),
        "amount": 1.0, "is_discounted": False,
    })  # fmt: skip
    activity = Activity(customers=pd.DataFrame(columns=["customer_id", "first_seen_at"]),
                        orders=orders)  # fmt: skip
    assert set(purchased_within(activity, AS_OF, 30).index) == {"first_day", "last_day"}


def _planted(seed: int, customers: int = 2500, days: int = 540) -> Activity:
    """Shoppers with a steady purchase rate; some complain (a negative ticket) and most of
    those stop buying soon after. RFM sees the stop only once recency grows."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2026-12-31")
    start = end - pd.Timedelta(days=days)
    first = rng.integers(0, days // 2, customers)
    rate = rng.gamma(2.0, 1 / 60, customers)  # purchases per day
    complaint = np.where(rng.random(customers) < 0.25,
                         rng.integers(first + 30, days), -1)  # fmt: skip
    stops = np.where((complaint >= 0) & (rng.random(customers) < 0.8),
                     complaint + rng.integers(0, 14, customers), days)  # fmt: skip
    rows = []
    for i in range(customers):
        day = first[i]
        while day < min(stops[i], days):
            rows.append((f"c{i}", start + pd.Timedelta(days=int(day)), float(rng.gamma(3, 20))))
            day += int(rng.exponential(1 / rate[i])) + 1
    orders = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount"])
    orders["is_discounted"] = False
    who = np.flatnonzero(complaint >= 0)
    return Activity(
        customers=pd.DataFrame({"customer_id": [f"c{i}" for i in range(customers)],
                                "first_seen_at": start + pd.to_timedelta(first, unit="D")}),
        orders=orders,
        tickets=pd.DataFrame({"customer_id": [f"c{i}" for i in who],
                              "created_at": start + pd.to_timedelta(complaint[who], unit="D"),
                              "is_negative": True}),
    )  # fmt: skip


@pytest.fixture(scope="module")
def planted():
    return _planted(5)


def test_the_planted_churn_mechanism_is_found_and_beats_the_rfm_baseline(planted):
    result = run_model(planted, "churn", pd.Timestamp("2026-12-31"), FAST)
    assert result.skipped is None
    model, baseline = result.backtest, result.baseline
    assert model["rows"] == baseline["rows"] > 500
    assert model["auc"] > baseline["auc"] + 0.03, (model, baseline)
    assert model["brier"] < baseline["brier"] and model["log_loss"] < baseline["log_loss"]
    top = list(result.importances)[:3]
    assert {"days_since_negative_ticket", "negative_tickets_90d"} & set(top), result.importances
    # Calibrated: in every decile, predicted and observed churn within 0.15 of each other.
    assert all(abs(d["predicted"] - d["observed"]) < 0.15 for d in result.deciles), result.deciles
    assert ((result.scores >= 0) & (result.scores <= 1)).all() and len(result.scores) > 500


def test_nothing_after_the_as_of_date_changes_training_or_scores(planted):
    as_of = pd.Timestamp("2026-10-31")
    before = run_model(planted, "purchase", as_of, FAST)
    later = planted.orders[planted.orders.ordered_at > as_of + pd.Timedelta(days=1)]
    assert len(later) > 100
    changed = Activity(
        customers=planted.customers,
        # Every order after the as-of date doubled, moved and re-priced.
        orders=pd.concat([planted.orders,
                          later.assign(amount=later.amount * 7,
                                       ordered_at=later.ordered_at - pd.Timedelta(hours=1))]),
        tickets=pd.concat([planted.tickets,
                           planted.tickets.assign(created_at=as_of + pd.Timedelta(days=3))]),
    )  # fmt: skip
    after = run_model(changed, "purchase", as_of, FAST)
    assert before.skipped is None and after.skipped is None
    pd.testing.assert_series_equal(before.scores, after.scores)
    assert before.backtest == after.backtest and before.importances == after.importances


def test_runs_are_deterministic(planted):
    one, two = (run_model(planted, "purchase", pd.Timestamp("2026-12-31"), FAST) for _ in "12")
    pd.testing.assert_series_equal(one.scores, two.scores)
    assert one.backtest == two.backtest and one.deciles == two.deciles


def test_a_trained_model_scores_again_until_it_is_retrain_days_old(planted):
    as_of = pd.Timestamp("2026-12-24")
    trained = run_model(planted, "churn", as_of, FAST)
    assert trained.fitted is not None and trained.trained_as_of == as_of
    later = as_of + pd.Timedelta(days=FAST.retrain_days - 1)
    reused = run_model(planted, "churn", later, FAST, trained)
    assert reused.fitted is trained.fitted and reused.trained_as_of == as_of
    assert reused.as_of == later and reused.backtest == trained.backtest
    pd.testing.assert_series_equal(reused.scores, score(planted, "churn", later, trained.fitted))
    # Scores move with the as-of date: the model is applied, not its old scores copied.
    assert not reused.scores.equals(trained.scores)
    # Old enough, or asked for a date before its training: trained again.
    for as_of_again in (as_of + pd.Timedelta(days=FAST.retrain_days), as_of - DAY):
        again = run_model(planted, "churn", as_of_again, FAST, trained)
        assert again.fitted is not trained.fitted and again.trained_as_of == as_of_again
    always = replace(FAST, retrain_days=0)
    assert run_model(planted, "churn", as_of, always, trained).fitted is not trained.fitted


def test_the_fingerprint_changes_with_the_training_settings():
    assert fingerprint(FAST, "churn") == fingerprint(replace(FAST), "churn")
    assert fingerprint(FAST, "churn") != fingerprint(FAST, "purchase")
    assert fingerprint(FAST, "churn") != fingerprint(replace(FAST, max_iter=41), "churn")
    assert fingerprint(FAST, "churn") == fingerprint(replace(FAST, retrain_days=3), "churn")


def test_a_single_class_label_is_skipped_with_the_counts(planted):
    # Nobody buys again once the shop stops selling: every buyer churned.
    cut = pd.Timestamp("2026-06-30")
    frozen = Activity(planted.customers, planted.orders[planted.orders.ordered_at < cut])
    result = run_model(frozen, "churn", pd.Timestamp("2026-12-31"), FAST)
    assert result.skipped and "0 negative" in result.skipped and "churn" in result.skipped
    assert result.scores.empty


def test_too_little_history_is_skipped_not_failed(planted):
    config = replace(FAST, churn_days=400)  # the backtest would start before the first order
    result = run_model(planted, "churn", pd.Timestamp("2026-12-31"), config)
    assert result.skipped and "min_class_count" in result.skipped


def test_metrics_and_baseline_on_a_hand_example():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])
    m = metrics(y, p)
    assert m["positive_rate"] == pytest.approx(0.3)
    assert m["top_decile_lift"] == pytest.approx(1 / 0.3)  # the top one is a positive
    assert m["auc"] == pytest.approx(19 / 21)  # 19 of 21 positive-negative pairs ordered
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert [d["rows"] for d in decile_table(y, p)] == [1] * 10
    frame = pd.DataFrame({"recency_days": [1.0, 50.0, np.nan], "order_days": [5.0, 1.0, 0.0],
                          "monetary": [500.0, 10.0, 0.0]})  # fmt: skip
    assert list(rfm_scores(frame)) == [15.0, 9.0, 0.0]  # 5+5+5, 3+3+3 of two buyers, no order


@pytest.mark.parametrize("repeats", [1, 3])
def test_batched_permutation_importances_equal_scikit_learns(monkeypatch, repeats):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance

    import ml.propensity

    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] + 0.5 * X[:, 2] + rng.normal(scale=0.8, size=400) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    expected = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=repeats,
                                      random_state=7).importances_mean  # fmt: skip
    calls = []

    def predict(rows):
        calls.append(len(rows))
        return model.predict_proba(rows)[:, 1]

    # Two features per call: the batches split the columns, and the figures stay the same.
    monkeypatch.setattr(ml.propensity, "IMPORTANCE_BATCH_ROWS", 2 * 400 * repeats)
    got = permutation_importances(predict, X, y, repeats, 7)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert got[0] > got[1] and got[0] > 0.1  # the planted feature matters
    assert calls == [400, 2 * 400 * repeats, 2 * 400 * repeats, 400 * repeats]
