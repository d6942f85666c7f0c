"""PNG plots of a predictions run: calibration and lift of the propensity backtests, and the
lifetime value model's tracking of cumulative repeat purchases."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ml.plots import _png


def calibration(deciles: dict[str, list[dict]]) -> bytes:
    """Per model: mean predicted against observed rate in each decile of the backtest."""
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for model, rows in deciles.items():
        ax.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], marker="o",
                label=model)  # fmt: skip
    ax.set_xlabel("mean predicted probability (decile)")
    ax.set_ylabel("observed rate")
    ax.set_title("calibration, out-of-time backtest")
    ax.legend()
    return _png(fig)


def lift(deciles: dict[str, list[dict]]) -> bytes:
    """Per model: observed rate in each decile over the overall rate (1 = no better than
    chance), highest predicted decile first."""
    models = list(deciles)
    fig, axes = plt.subplots(1, max(len(models), 1), figsize=(3.8 * max(len(models), 1), 3.0))
    for ax, model in zip(np.atleast_1d(axes), models, strict=False):
        rows = deciles[model]
        total = sum(r["rows"] for r in rows)
        overall = sum(r["observed"] * r["rows"] for r in rows) / total if total else 0
        values = [r["observed"] / overall if overall else 0 for r in rows]
        ax.bar([r["decile"] for r in rows], values)
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("decile of predicted probability")
        ax.set_ylabel("lift")
        ax.set_title(f"{model}: lift by decile")
    return _png(fig)


def tracking(frame: pd.DataFrame) -> bytes:
    """Cumulative repeat purchase days by week: actual against the BG/NBD expectation."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(frame["week"], frame["actual"], label="actual")
    ax.plot(frame["week"], frame["expected"], linestyle="--", label="BG/NBD")
    ax.set_xlabel("week")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title("repeat purchases, actual and expected")
    ax.legend()
    return _png(fig)


def experiment(rows: pd.DataFrame) -> bytes:
    """One experiment (experiment_results rows): conversion by arm and the uplift with its
    95% interval, per window after entry."""
    rows = rows.sort_values("window_days")
    labels = [f"{int(w)} d" for w in rows["window_days"]]
    x = np.arange(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.0), constrained_layout=True)
    left.bar(x - 0.2, rows["treatment_conversion_rate"].fillna(0), 0.4, label="treatment")
    left.bar(x + 0.2, rows["holdout_conversion_rate"].fillna(0), 0.4, label="holdout")
    left.set_xticks(x, labels)
    left.set_ylabel("conversion rate")
    left.legend()
    uplift = rows["conversion_uplift"].to_numpy(float)
    low = uplift - rows["conversion_uplift_ci_low"].to_numpy(float)
    high = rows["conversion_uplift_ci_high"].to_numpy(float) - uplift
    right.errorbar(x, uplift, yerr=[low, high], fmt="o", capsize=4)
    right.axhline(0, color="grey", linestyle="--", linewidth=1)
    right.set_xticks(x, labels)
    right.set_ylabel("uplift, 95% interval")
    fig.suptitle(f"experiment {rows['experiment_id'].iloc[0]}")
    return _png(fig)
