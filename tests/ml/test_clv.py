"""The lifetime value model (ml/clv.py) on small frames: conventions, errors, determinism.
Parity with the published CDNOW parameters is tested on the pipeline's own orders, in
tests/orchestration/test_source_subsets.py."""

import numpy as np
import pandas as pd
import pytest

from ml.clv import ClvError, customer_lifetime_value, fit_bgnbd, fit_gamma_gamma, summarize

AS_OF = pd.Timestamp("2026-03-31")


def orders(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount"]).assign(
        ordered_at=lambda f: pd.to_datetime(f.ordered_at, format="ISO8601")
    )


def test_summary_follows_the_literature_conventions():
    frame = orders([
        ("a", "2026-01-01 09:00", 10.0), ("a", "2026-01-01 18:00", 5.0),  # one day, one purchase
        ("a", "2026-01-15", 20.0), ("a", "2026-01-29", 40.0),
        ("a", "2026-04-02", 99.0),  # after calibration: left out
        ("b", "2026-03-04", 7.0),
        ("c", "2026-04-05", 1.0),  # first order after calibration: not a customer yet
    ])  # fmt: skip
    s = summarize(frame, AS_OF)
    assert list(s.index) == ["a", "b"]
    assert s.loc["a", "frequency"] == 2  # repeat purchase days
    assert s.loc["a", "recency"] == pytest.approx(28 / 7)
    assert s.loc["a", "T"] == pytest.approx(89 / 7)
    assert s.loc["a", "monetary_value"] == pytest.approx(30.0)  # repeat purchases only
    assert s.loc["b", "frequency"] == 0 and s.loc["b", "monetary_value"] == 0


def _synthetic(seed: int, customers: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(customers):
        start = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 90)))
        rate, alive = rng.gamma(0.5, 0.1), int(rng.integers(30, 500))
        day = 0
        while day <= alive:
            rows.append((f"c{i}", start + pd.Timedelta(days=day), float(rng.gamma(4, 10))))
            day += int(rng.exponential(1 / max(rate, 1e-3))) + 1
    return orders(rows)


def test_fits_are_deterministic_and_predictions_are_sane():
    s = summarize(_synthetic(3), AS_OF)
    first, again = fit_bgnbd(s), fit_bgnbd(s)
    assert first == again
    gg = fit_gamma_gamma(s)
    alive = first.probability_alive(s.frequency, s.recency, s["T"])
    assert ((alive >= 0) & (alive <= 1)).all()
    near, far = (first.expected_purchases(t, s.frequency, s.recency, s["T"]) for t in (4, 52))
    assert (far >= near).all() and (near >= 0).all()
    clv = customer_lifetime_value(first, gg, s, months=12)
    assert (clv >= 0).all() and clv.sum() > 0
    # A customer seen recently and often is worth more than one gone quiet long ago.
    busy = s.frequency.idxmax()
    quiet = s[(s.frequency > 0)].assign(gap=lambda f: f["T"] - f.recency).gap.idxmax()
    assert clv[busy] > clv[quiet]


def test_too_few_repeat_buyers_is_a_clear_error():
    one_timers = orders([(f"c{i}", "2026-01-0" + str(1 + i % 9), 10.0) for i in range(30)])
    s = summarize(one_timers, AS_OF)
    with pytest.raises(ClvError, match="repeat purchases"):
        fit_bgnbd(s)
    few = orders([("a", "2026-01-01", 10.0), ("a", "2026-02-01", 12.0),
                  ("b", "2026-01-05", 3.0)])  # fmt: skip
    with pytest.raises(ClvError, match="at least 10 customers with a repeat purchase"):
        fit_gamma_gamma(summarize(few, AS_OF))


def test_unconditional_expectation_matches_a_simulated_bg_nbd_population():
    """E[X(t)] (FHL 2005, eq. 9) against customers drawn from the model itself: each has a
    purchase rate from Gamma(r, alpha) and a drop-out chance after every purchase from
    Beta(a, b)."""
    from ml.clv import BgNbd

    bg = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0.0, customers=0)
    rng = np.random.default_rng(0)
    n, t = 40_000, 39.0
    rate = rng.gamma(bg.r, 1 / bg.alpha, n)
    drop = rng.beta(bg.a, bg.b, n)
    counts = np.zeros(n)
    clock = np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():
        clock[alive] += rng.exponential(1 / np.maximum(rate[alive], 1e-12))
        bought = alive & (clock <= t)
        counts[bought] += 1
        alive = bought & (rng.random(n) >= drop)
    assert bg.expected_repeat_purchases(t) == pytest.approx(counts.mean(), rel=0.04)
    assert bg.expected_repeat_purchases(0.0) == pytest.approx(0.0)


def test_tracking_counts_repeat_purchase_days_by_week():
    from ml.clv import BgNbd, tracking

    frame = orders([
        ("a", "2026-01-01", 1.0), ("a", "2026-01-01 20:00", 1.0),  # one day: no repeat
        ("a", "2026-01-05", 1.0), ("a", "2026-01-20", 1.0),
        ("b", "2026-01-08", 1.0), ("b", "2026-01-09", 1.0),
        ("b", "2026-02-20", 1.0),  # after the end
    ])  # fmt: skip
    bg = BgNbd(r=0.5, alpha=5.0, a=0.8, b=2.5, log_likelihood=0.0, customers=2)
    t = tracking(frame, pd.Timestamp("2026-01-31"), bg)
    assert list(t.week) == [1, 2, 3, 4, 5]
    assert list(t.actual) == [1, 2, 3, 3, 3]  # weeks end 01-08, 01-15, 01-22, 01-29, 02-01
    # a from day 0, b from day 7; the last week ends with the calibration (31 days).
    expected = [
        bg.expected_repeat_purchases(7 / 7) + 0,
        bg.expected_repeat_purchases(14 / 7) + bg.expected_repeat_purchases(7 / 7),
    ]
    assert t.expected.iloc[:2].tolist() == pytest.approx(expected)
    last = bg.expected_repeat_purchases(31 / 7) + bg.expected_repeat_purchases(24 / 7)
    assert t.expected.iloc[-1] == pytest.approx(last)


def test_a_likelihood_maximum_at_infinity_stops_at_the_bound_with_sane_predictions():
    """Every customer with the same drop-out chance (0.1 after each purchase): the Beta's a
    and b grow without end along the likelihood's ridge. The fit stops at the bound, quickly,
    with the drop-out chance right and predictions finite (the generator's data does this;
    unbounded, the search ran 400 s at 100,000 customers)."""
    import time

    from ml.clv import LOG_BOUND

    rng = np.random.default_rng(11)
    rows = []
    for i in range(3000):
        start = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 60)))
        rate, day = rng.gamma(2.0, 0.02), 0  # purchases per day
        while True:
            day += int(rng.exponential(1 / rate)) + 1
            if start + pd.Timedelta(days=day) > AS_OF or rng.random() < 0.1:
                break
            rows.append((f"c{i}", start + pd.Timedelta(days=day), 10.0))
        rows.append((f"c{i}", start, 10.0))
    s = summarize(orders([(c, str(t), a) for c, t, a in rows]), AS_OF)
    started = time.perf_counter()
    bg = fit_bgnbd(s)
    assert time.perf_counter() - started < 20
    assert bg.a + bg.b > 50 and max(bg.a, bg.b) <= np.exp(LOG_BOUND) * 1.0001
    assert bg.a / (bg.a + bg.b) == pytest.approx(0.1, abs=0.03)
    alive = bg.probability_alive(s.frequency, s.recency, s["T"])
    assert np.isfinite(alive).all() and ((alive >= 0) & (alive <= 1)).all()
