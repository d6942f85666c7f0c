"""Propensity backtests and the predictions step's cost on built warehouses
(bench/results/predictions.md).

    python bench/predictions.py --warehouse PATH --label "generated 20k, seed 7" [--warehouse ...]
    python bench/predictions.py --cdnow tests/data/cdnow_sample.txt

Each warehouse must have been built by a whole run (`segmint run`, or the demo). For each,
the churn and purchase models (ml/propensity.py, default configuration) are backtested out
of time against the plain RFM-score baseline on the same split, and the whole predictions
step (lifetime value, both models, plots, tables) is timed on a copy, with peak memory.
--cdnow converts a CDNOW file (the sample, or the master file of the whole cohort), runs the
pipeline on it (bench/work/cdnow/) and benches that warehouse; it also reports the lifetime
value fit of Fader, Hardie and Lee (2005) on the pipeline's orders: calibration to
1997-09-30 (39 weeks), the holdout to 1998-06-30, and the tracking curve.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import append  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "predictions.md"
TITLE = "# Predictions (bench/predictions.py)\n\nNewest last.\n"
WORK = ROOT / "bench" / "work"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _row(name: str, m: dict) -> str:
    return (f"| {name} | {m['auc']:.3f} | {m['log_loss']:.4f} | {m['brier']:.4f} "
            f"| {m['top_decile_lift']:.2f} |")  # fmt: skip


def bench_warehouse(path: Path, label: str) -> str:
    import pandas as pd

    from ml.config import PropensityConfig
    from ml.propensity import MODELS, run_model
    from segmint.predictions import _activity, run_predictions

    copy = WORK / "predictions" / path.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, copy)
    with duckdb.connect(str(copy)) as con:
        as_of = con.execute("select max(as_of_date) from intermediate.int_segments__as_of")
        as_of = pd.Timestamp(as_of.fetchone()[0])
        started = time.perf_counter()
        activity = _activity(con)
        read = time.perf_counter() - started
        lines = [
            f"\n## {label}: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n",
            f"{platform.machine()}, {os.cpu_count()} cores; as of {as_of:%Y-%m-%d}; "
            f"{len(activity.customers):,} customers, {len(activity.orders):,} completed "
            f"orders, {len(activity.sessions):,} sessions, {len(activity.tickets):,} tickets "
            f"(read in {read:.1f} s).\n",
            "Out-of-time backtest (trained at A - 2w, scored at A - w, labels from (A - w, A]); "
            "the RFM baseline is trained and measured on the same split.\n",
            "| model | AUC | log loss | Brier | top-decile lift |",
            "|---|---:|---:|---:|---:|",
        ]
        importances = []
        for model in MODELS:
            started = time.perf_counter()
            result = run_model(activity, model, as_of, PropensityConfig())
            seconds = time.perf_counter() - started
            if result.skipped:
                lines.append(f"| {model} | skipped: {result.skipped} | | | |")
                continue
            b = result.backtest
            lines.append(_row(f"**{model}** ({result.window_days} days; positive rate "
                              f"{b['positive_rate']:.3f}, {b['rows']:,} customers; "
                              f"{seconds:.1f} s)", b))  # fmt: skip
            lines.append(_row(f"{model}: RFM baseline", result.baseline))
            top = ", ".join(f"{k} {v:.3f}" for k, v in list(result.importances.items())[:5])
            importances.append(f"- {model}: {top}")
        started = time.perf_counter()
        report = run_predictions(con)
        step = time.perf_counter() - started
    lines += [
        "",
        "Permutation importance (AUC drop), top five:",
        *importances,
        "",
        f"Whole predictions step (`run_predictions`: lifetime value, both models, plots, "
        f"tables): **{step:.1f} s**; peak RSS of this process {_peak_mb():,.0f} MB; "
        f"lifetime value {'skipped: ' + report.skipped if report.skipped else 'fitted'}.",
        "",
    ]
    return "\n".join(lines)


def build_cdnow(sample: Path) -> Path:
    from segmint.config import DEV_PII_SALT
    from segmint.datasets import landing_from_cdnow

    work = WORK / "cdnow"
    shutil.rmtree(work, ignore_errors=True)
    landing_from_cdnow(sample, work / "landing")
    env = {**os.environ, "SEGMINT_LANDING_DIR": str(work / "landing"),
           "SEGMINT_DUCKDB_PATH": str(work / "w.duckdb"), "SEGMINT_PII_SALT": DEV_PII_SALT,
           "SEGMINT_EXPORT_DIR": str(work / "exports")}  # fmt: skip
    for var in ("SEGMINT_HUBSPOT_URL", "SEGMINT_SALESFORCE_URL", "SEGMINT_WEBHOOK_URL"):
        env.pop(var, None)
    segmint = str(Path(sys.executable).parent / "segmint")
    subprocess.run([segmint, "run"], env=env, check=True, capture_output=True, text=True)
    return work / "w.duckdb"


def cdnow_calibration(warehouse: Path, label: str) -> str:
    """The FHL (2005) calibration and holdout on the orders the pipeline built."""
    import pandas as pd

    from ml import clv

    with duckdb.connect(str(warehouse), read_only=True) as con:
        orders = con.execute(
            "select customer_id, ordered_at, cast(total_amount as double) as amount "
            "from marts.fct_orders where is_completed"
        ).df()
    started = time.perf_counter()
    summary = clv.summarize(orders, pd.Timestamp("1997-09-30"))
    bg, gg = clv.fit_bgnbd(summary), clv.fit_gamma_gamma(summary)
    seconds = time.perf_counter() - started
    held = orders[orders.ordered_at > pd.Timestamp("1997-09-30 23:59:59")]
    actual = (held.assign(day=held.ordered_at.dt.normalize()).groupby("customer_id").day
              .nunique().reindex(summary.index).fillna(0))  # fmt: skip
    predicted = bg.expected_purchases(39.0, summary.frequency, summary.recency, summary["T"])
    track = clv.tracking(orders, pd.Timestamp("1998-06-30"), bg).set_index("week")
    weeks = ", ".join(
        f"week {w}: {track.expected[w]:,.0f} expected, {track.actual[w]:,.0f} actual "
        f"({track.expected[w] / track.actual[w] - 1:+.1%})"
        for w in (39, 78)
    )
    return "\n".join(
        [
            f"## {label}: lifetime value calibration (FHL 2005): "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"{len(orders):,} completed orders, {bg.customers:,} customers; calibration to "
            f"1997-09-30 (39 weeks), fitted in {seconds:.1f} s.",
            "",
            "| BG/NBD r | alpha | a | b | Gamma-Gamma p | q | v | repeat buyers |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {bg.r:.4f} | {bg.alpha:.4f} | {bg.a:.4f} | {bg.b:.4f} | {gg.p:.4f} | {gg.q:.4f} "
            f"| {gg.v:.4f} | {gg.customers:,} |",
            "",
            f"Holdout (weeks 40-78): {actual.sum():,.0f} actual repeat purchase days, "
            f"{predicted.sum():,.1f} predicted ({predicted.sum() / actual.sum():.3f}); mean "
            f"absolute error {float(abs(predicted - actual).mean()):.3f} per customer. "
            f"Cumulative repeat purchase days, {weeks}.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, action="append", default=[])
    parser.add_argument("--label", action="append", default=[])
    parser.add_argument("--cdnow", type=Path)
    args = parser.parse_args()
    labels = args.label + [p.name for p in args.warehouse[len(args.label) :]]
    targets = list(zip(args.warehouse, labels, strict=False))
    if args.cdnow:
        cdnow = build_cdnow(args.cdnow)
        label = f"public CDNOW, {args.cdnow.name} (orders only)"
        append(RESULTS, TITLE, cdnow_calibration(cdnow, label))
        targets.append((cdnow, label))
    for path, label in targets:
        append(RESULTS, TITLE, bench_warehouse(path, label))
    print(json.dumps({"results": str(RESULTS)}))


if __name__ == "__main__":
    main()
