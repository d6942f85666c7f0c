"""Customer lifetime value: the BG/NBD purchase model and the Gamma-Gamma spend model.

Fitted by maximum likelihood with scipy (already installed with scikit-learn), exactly as
published: Fader, Hardie and Lee (2005), "Counting your customers the easy way: an
alternative to the Pareto/NBD model" (BG/NBD), and Fader, Hardie and Lee (2005), "RFM and
CLV: using iso-value curves for customer base analysis" (Gamma-Gamma). On the CDNOW sample
both reproduce the published parameters (tests/orchestration/test_source_subsets.py).

Conventions of the literature, kept here:
- time is in weeks;
- purchases on the same day count as one;
- ``frequency`` is the number of *repeat* purchase days;
- ``recency`` is the time from the first to the last purchase;
- ``T`` is the time from the first purchase to the end of calibration;
- the spend model uses the mean value of the repeat purchases of customers with at least one.

The pipeline's predictions asset (segmint/predictions.py) fits and scores these per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

DAYS_PER_WEEK = 7.0
# Fewer repeat buyers than this cannot identify the spend model's three parameters.
MIN_REPEAT_BUYERS = 10


class ClvError(ValueError):
    """The orders cannot support the model (too few customers or repeat buyers)."""


def summarize(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per customer: frequency, recency and T in weeks, and the mean repeat purchase value.

    ``orders`` has ``customer_id``, ``ordered_at`` and ``amount``; orders after ``as_of`` (the
    end of calibration, inclusive of its day) are left out, and so are customers whose first
    order is after it.
    """
    as_of = pd.Timestamp(as_of).normalize()
    frame = orders[["customer_id", "ordered_at", "amount"]].copy()
    frame["day"] = pd.to_datetime(frame["ordered_at"]).dt.normalize()
    frame = frame[frame["day"] <= as_of]
    daily = frame.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    daily = daily.sort_values(["customer_id", "day"])
    daily["nth"] = daily.groupby("customer_id").cumcount()
    by = daily.groupby("customer_id")
    first, last = by["day"].min(), by["day"].max()
    summary = pd.DataFrame(
        {
            "frequency": by.size() - 1,
            "recency": (last - first).dt.days / DAYS_PER_WEEK,
            "T": (as_of - first).dt.days / DAYS_PER_WEEK,
        }
    )
    repeat = daily[daily["nth"] > 0].groupby("customer_id")["amount"].mean()
    summary["monetary_value"] = repeat.reindex(summary.index).fillna(0.0).astype(float)
    summary["frequency"] = summary["frequency"].astype(float)
    return summary


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int

    def probability_alive(self, x, tx, T) -> np.ndarray:
        """P(still a customer | x, t_x, T): FHL (2005), equation (12)."""
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        ratio = (self.a / (self.b + np.maximum(x, 1) - 1)) * (
            (self.alpha + T) / (self.alpha + tx)
        ) ** (self.r + x)
        return np.where(x > 0, 1.0 / (1.0 + ratio), 1.0)

    def expected_repeat_purchases(self, t) -> np.ndarray:
        """Expected repeat purchases of a new customer in their first ``t`` weeks,
        unconditionally: FHL (2005), equation (9)."""
        t = np.asarray(t, dtype=float)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        body = 1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * body

    def expected_purchases(self, t, x, tx, T) -> np.ndarray:
        """Expected purchases in the next ``t`` weeks given x, t_x, T: FHL (2005), eq. (10)."""
        x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        tail = 1 + np.where(x > 0, a / (b + x - 1), 0.0) * ((alpha + T) / (alpha + tx)) ** (r + x)
        return head * body / tail


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float
    log_likelihood: float
    customers: int

    def expected_spend(self, x, m) -> np.ndarray:
        """E(spend per purchase | x repeat purchases of mean value m); the population mean
        for customers without repeat purchases."""
        x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
        p, q, v = self.p, self.q, self.v
        population = p * v / (q - 1)
        weight = (q - 1) / (p * x + q - 1)
        return np.where(x > 0, weight * population + (1 - weight) * m, population)


def _bgnbd_nll(log_params, x, tx, T, w, counts) -> float:
    """Negative log-likelihood of customers (x, tx, T), each row standing for w of them.

    ``counts`` is ``np.unique(x, return_inverse=True)``: the terms that depend on x alone
    (the special functions, most of the cost) are computed once per distinct number of
    repeat purchases, a few dozen values, and spread to the rows; each row's value is the
    same, to the last bit, as computing it on the row."""
    r, alpha, a, b = np.exp(log_params)
    distinct, row = counts
    first = (gammaln(r + distinct) - gammaln(r) + r * np.log(alpha))[row]
    second = (betaln(a, b + distinct) - betaln(a, b))[row]
    alive = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        repeat = (np.log(a) - np.log(b + np.maximum(distinct, 1) - 1))[row]
        dropped = np.where(x > 0, repeat - (r + x) * np.log(alpha + tx), -np.inf)
    return -float(np.sum(w * (first + second + np.logaddexp(alive, dropped))))


def fit_bgnbd(summary: pd.DataFrame) -> BgNbd:
    if len(summary) < 2 or summary["frequency"].sum() == 0:
        raise ClvError(
            f"the purchase model needs repeat purchases: {len(summary)} customers, "
            f"{int((summary['frequency'] > 0).sum())} with a repeat purchase"
        )
    # Customers with the same (frequency, recency, T) have the same likelihood: each
    # distinct triple is evaluated once, weighted by how many customers share it (about
    # half the rows at 100,000 generated customers).
    patterns = (
        summary.groupby(["frequency", "recency", "T"], sort=False).size().reset_index(name="w")
    )
    x, tx, T, w = (patterns[c].to_numpy(float) for c in ("frequency", "recency", "T", "w"))
    data = (x, tx, T, w, np.unique(x, return_inverse=True))
    result = _minimize(_bgnbd_nll, 4, data, customers=len(summary))
    r, alpha, a, b = np.exp(result.x)
    log_likelihood = -_bgnbd_nll(result.x, *data)
    return BgNbd(float(r), float(alpha), float(a), float(b), log_likelihood, len(summary))


def _gg_nll(log_params, x, m, counts) -> float:
    """Negative log-likelihood of the spend model; ``counts`` as in _bgnbd_nll."""
    p, q, v = np.exp(log_params)
    distinct, row = counts
    head = (gammaln(p * distinct + q) - gammaln(p * distinct) - gammaln(q) + q * np.log(v))[row]
    return -float(
        np.sum(head + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + x * m))
    )  # fmt: skip


def fit_gamma_gamma(summary: pd.DataFrame) -> GammaGamma:
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(repeat) < MIN_REPEAT_BUYERS:
        raise ClvError(
            f"the spend model needs at least {MIN_REPEAT_BUYERS} customers with a repeat "
            f"purchase of positive value; found {len(repeat)}"
        )
    x, m = repeat["frequency"].to_numpy(float), repeat["monetary_value"].to_numpy(float)
    data = (x, m, np.unique(x, return_inverse=True))
    result = _minimize(_gg_nll, 3, data, customers=len(repeat))
    p, q, v = np.exp(result.x)
    return GammaGamma(float(p), float(q), float(v), -_gg_nll(result.x, *data), len(repeat))


# Log-parameters stay within e^-12 .. e^12. Some data put the likelihood's maximum at
# infinity (the BG/NBD drop-out Beta with a and b growing along a ridge: every customer the
# same drop-out chance); the bound stops the search there, where the predictions have long
# converged. Nelder-Mead only refines, for a bounded number of iterations.
LOG_BOUND = 12.0
REFINE_ITERATIONS = 500


def _minimize(nll, n: int, args, customers: int):
    """Bounded L-BFGS-B on log parameters (all are positive), refined by Nelder-Mead and
    polished by L-BFGS-B again; the best point wins. The mean negative log-likelihood per
    customer is minimized, so that tolerances mean the same at any number of customers."""

    def mean_nll(params, *data):
        value = nll(np.clip(params, -LOG_BOUND, LOG_BOUND), *data) / customers
        return value if np.isfinite(value) else 1e12

    bounds = [(-LOG_BOUND, LOG_BOUND)] * n
    first = minimize(mean_nll, np.zeros(n), args=args, method="L-BFGS-B", bounds=bounds)
    refined = minimize(mean_nll, first.x, args=args, method="Nelder-Mead",
                       options={"maxiter": REFINE_ITERATIONS, "xatol": 1e-10,
                                "fatol": 1e-13})  # fmt: skip
    refined.x = np.clip(refined.x, -LOG_BOUND, LOG_BOUND)
    fine = minimize(mean_nll, refined.x, args=args, method="L-BFGS-B", bounds=bounds)
    best = min((first, refined, fine), key=lambda r: r.fun)
    if not np.all(np.isfinite(best.x)):
        raise ClvError("the fit did not converge")
    return best


def customer_lifetime_value(
    bg: BgNbd,
    gg: GammaGamma,
    summary: pd.DataFrame,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
) -> pd.Series:
    """Discounted expected spend over ``months``: each month's expected purchases (the
    difference of the cumulative expectation) times the expected spend, discounted."""
    x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    spend = gg.expected_spend(x, summary["monetary_value"].to_numpy(float))
    weeks_per_month = 52.0 / 12.0
    value = np.zeros(len(summary))
    previous = np.zeros(len(summary))
    for month in range(1, months + 1):
        cumulative = bg.expected_purchases(month * weeks_per_month, x, tx, T)
        value += (cumulative - previous) * spend / (1 + monthly_discount_rate) ** month
        previous = cumulative
    return pd.Series(value, index=summary.index, name="predicted_clv")


def tracking(orders: pd.DataFrame, as_of: pd.Timestamp, bg: BgNbd) -> pd.DataFrame:
    """Cumulative repeat purchase days by week since the first customer's first purchase:
    actual against the model's expectation for customers of the same first-purchase days
    (the tracking plot of FHL 2005, figure 2). Columns week, actual, expected."""
    as_of = pd.Timestamp(as_of).normalize()
    days = pd.to_datetime(orders["ordered_at"]).dt.normalize()
    daily = pd.DataFrame({"customer_id": orders["customer_id"], "day": days})
    daily = daily[daily["day"] <= as_of].drop_duplicates()
    first = daily.groupby("customer_id")["day"].transform("min")
    repeat_days = daily.loc[daily["day"] > first, "day"].to_numpy()
    cohorts = daily.groupby("customer_id")["day"].min().value_counts()
    start = cohorts.index.min()
    weeks = np.arange(1, int(np.ceil(((as_of - start).days + 1) / DAYS_PER_WEEK)) + 1)
    ends = start + pd.to_timedelta(weeks * DAYS_PER_WEEK, unit="D")
    ends = ends.where(ends <= as_of + pd.Timedelta(days=1), as_of + pd.Timedelta(days=1))
    age = (ends.to_numpy()[:, None] - cohorts.index.to_numpy()[None, :]) / np.timedelta64(1, "D")
    expected = bg.expected_repeat_purchases(np.clip(age, 0, None) / DAYS_PER_WEEK)
    actual = np.searchsorted(np.sort(repeat_days), ends.to_numpy(), side="left")
    return pd.DataFrame({"week": weeks, "actual": actual.astype(float),
                         "expected": expected @ cohorts.to_numpy(float)})  # fmt: skip
