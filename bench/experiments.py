"""Coverage of the experiment intervals on planted effects (bench/results/experiments.md).

    python bench/experiments.py --runs 100 --members 4000 --lift 0.03

Plants --runs independent experiments (segmint/experiments.py: --members customers each, a
holdout share, a base conversion rate, and treatment members converting --lift more, with
order values whose mean makes the true revenue uplift known), builds the real
`experiment_results` model on them with dbt, and counts how often the 95% intervals cover
the planted conversion and revenue uplifts. Then the same with no effect, counting
significant results (p < 0.05). The issue's bar: coverage at least 93 of 100, false
positives at most 7 of 100.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import append  # noqa: E402
from segmint.config import DEV_PII_SALT  # noqa: E402
from segmint.experiments import Planted, plant  # noqa: E402
from segmint.privacy import store_salt  # noqa: E402
from tests.warehouse.helpers import dbt, frame  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "experiments.md"
TITLE = "# Experiment intervals on planted effects (bench/experiments.py)\n\nNewest last.\n"
WORK = ROOT / "bench" / "work" / "experiments"


def measure(planted: Planted):
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    warehouse = WORK / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        store_salt(con, DEV_PII_SALT)
        plant(con, planted)
    started = time.perf_counter()
    result = dbt(warehouse, WORK / "target", "build", "--select", "fx_rates",
                 "experiment_results", "--exclude", "test_type:unit", "--vars",
                 json.dumps({"audiences_override": planted.audiences_override()}))  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:])
    seconds = time.perf_counter() - started
    return frame(warehouse, "select * from marts.experiment_results"), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--members", type=int, default=4000)
    parser.add_argument("--holdout-share", type=float, default=0.2)
    parser.add_argument("--base-rate", type=float, default=0.10)
    parser.add_argument("--lift", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args()
    common = {"experiments": args.runs, "members": args.members,
              "holdout_share": args.holdout_share, "base_rate": args.base_rate}  # fmt: skip
    effect = Planted(**common, lift=args.lift, seed=args.seed)
    r, seconds = measure(effect)
    revenue = args.lift * effect.mean_amount
    covered = ((r.conversion_uplift_ci_low <= args.lift)
               & (r.conversion_uplift_ci_high >= args.lift)).sum()  # fmt: skip
    covered_revenue = ((r.revenue_uplift_ci_low <= revenue)
                       & (r.revenue_uplift_ci_high >= revenue)).sum()  # fmt: skip
    detected = (r.conversion_p_value < 0.05).sum()
    null, null_seconds = measure(Planted(**common, lift=0.0, seed=args.seed + 1))
    false_conversion = (null.conversion_p_value < 0.05).sum()
    false_revenue = (null.revenue_p_value < 0.05).sum()
    zero_covered = (
        (null.conversion_uplift_ci_low <= 0) & (null.conversion_uplift_ci_high >= 0)
    ).sum()
    n = args.runs
    text = "\n".join([
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {n} runs of {args.members:,} members\n",
        f"{platform.machine()}, {os.cpu_count()} cores. Holdout share {args.holdout_share}, "
        f"base conversion {args.base_rate} in a 30-day window, planted lift +{args.lift} "
        f"(revenue +{revenue:.2f} per member). One `dbt build` of experiment_results over all "
        f"runs: {seconds:.1f} s with the effect, {null_seconds:.1f} s without.\n",
        "| measure | result | bar |",
        "|---|---:|---:|",
        f"| 95% interval covers the planted conversion uplift | **{covered} / {n}** | >= 93 |",
        f"| 95% interval covers the planted revenue uplift | {covered_revenue} / {n} | - |",
        f"| effect detected (p < 0.05), power | {detected} / {n} | - |",
        f"| no effect: conversion significant (p < 0.05) | **{false_conversion} / {n}** | <= 7 |",
        f"| no effect: revenue significant (p < 0.05) | {false_revenue} / {n} | - |",
        f"| no effect: interval covers 0 | {zero_covered} / {n} | - |",
        f"\nMean measured conversion uplift {r.conversion_uplift.mean():+.4f} (planted "
        f"{args.lift:+.4f}); mean interval width "
        f"{(r.conversion_uplift_ci_high - r.conversion_uplift_ci_low).mean():.4f}; "
        f"holdout members per run {r.holdout_members.mean():,.0f}, required for +0.02 "
        f"{r.required_holdout_members.mean():,.0f}.\n",
    ])  # fmt: skip
    append(RESULTS, TITLE, text)


if __name__ == "__main__":
    main()
