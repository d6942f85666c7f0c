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
