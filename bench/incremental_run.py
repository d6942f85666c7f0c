"""The whole daily job with 1% new events against a full run (bench/results/incremental_run.md).

    python bench/incremental_run.py --customers 100000 [--seed 11]

Generates N customers (Parquet), runs `segmint run` on a new warehouse (the full run), then
twice adds a day's web events, 1% of those loaded (on devices seen before, after everything
loaded so far), as a new landing file and runs `segmint run` again (day 1 and day 2). Each
run is its own process; reported: the command's wall time, the Dagster run's wall time and
every step's time, from the instance's event log. By default no
CRM destination is configured (the file export runs). With --crm, HubSpot, Salesforce and
the webhook point at the CRM emulator on 127.0.0.1 (seeded with the landing folder's
contacts, as the tests do), each client paced by its shipped rate limit: the full run sends
every customer's tags, the run with 1% new events only what changed (the issue's own
measure included the sync).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import LAST_RUN_STEPS, prepend  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "incremental_run.md"
WORK = ROOT / "bench" / "work" / "incremental_run"


def environment() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SEGMINT_HUBSPOT", "SEGMINT_SALES",
                                                                  "SEGMINT_WEBHOOK"))
    }  # fmt: skip
    return {
        **env,
        "DAGSTER_HOME": str(WORK / "home"),
        "SEGMINT_DUCKDB_PATH": str(WORK / "w" / "segmint.duckdb"),
        "SEGMINT_LANDING_DIR": str(WORK / "landing"),
        "SEGMINT_DATA_DOCS_DIR": str(WORK / "docs"),
        "SEGMINT_EXPORT_DIR": str(WORK / "exports"),
        "PYTHONWARNINGS": "ignore",
    }


def segmint_run(env: dict[str, str], log: Path) -> dict:
    start = time.perf_counter()
    with log.open("w") as out:
        subprocess.run([sys.executable, "-m", "segmint.cli", "run"], cwd=ROOT, env=env,
                       stdout=out, stderr=subprocess.STDOUT, check=True)  # fmt: skip
    wall = time.perf_counter() - start
    steps = subprocess.run([sys.executable, "-c", LAST_RUN_STEPS], cwd=ROOT, env=env, text=True,
                           capture_output=True, check=True)  # fmt: skip
    return {**json.loads(steps.stdout.strip().splitlines()[-1]), "wall": wall}


def add_next_day_events(landing: Path, seed: int, day: int) -> int:
    """Day DAY's web events: 1% of those loaded, on devices seen before, after everything."""
    events = pd.read_parquet(landing / "web_events.parquet")
    late = events.sample(frac=0.01, random_state=seed + day - 1).copy()
    late["event_id"] = f"day_{day}_" + late["event_id"].astype(str)
    loaded = pd.concat(
        pd.read_parquet(f)["occurred_at"] for f in landing.glob("web_events*.parquet")
    )
    last = pd.to_datetime(loaded, format="ISO8601").max()
    offsets = np.random.default_rng(seed + day - 1).integers(60, 86_400, len(late))
    stamps = pd.Series(last + pd.to_timedelta(offsets, unit="s"), index=late.index)
    late["occurred_at"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    late.to_parquet(landing / f"web_events_day_{day}.parquet")
    return len(late)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--crm", action="store_true",
                        help="sync to the CRM emulator (HubSpot, Salesforce, webhook)")  # fmt: skip
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    env = environment()
    subprocess.run([sys.executable, "-m", "segmint.cli", "generate", "--customers",
                    str(args.customers), "--seed", str(args.seed), "--out", str(WORK / "landing")],
                   cwd=ROOT, env=env, check=True, capture_output=True)  # fmt: skip
    shutil.rmtree(WORK / "landing" / "truth", ignore_errors=True)
    with contextlib.ExitStack() as stack:
        if args.crm:
            from segmint.sync.emulator import CrmEmulator, seed_from_landing

            crm = stack.enter_context(CrmEmulator())
            crm.seed(seed_from_landing(WORK / "landing"))
            crm.state.webhook_secret = "hook-secret"
            env.update({
                "SEGMINT_HUBSPOT_URL": crm.url, "SEGMINT_HUBSPOT_TOKEN": "token",
                "SEGMINT_SALESFORCE_URL": crm.url, "SEGMINT_SALESFORCE_TOKEN": "token",
                "SEGMINT_WEBHOOK_URL": crm.url + "/webhook",
                "SEGMINT_WEBHOOK_SECRET": "hook-secret",
            })  # fmt: skip
        full = segmint_run(env, WORK / "full.log")
        print(f"full run: {full['wall']:.1f} s ({full['status']})", flush=True)
        # Day 1 follows the full run, which handled the generator's erasure requests: their
        # sweep changed the identity tables, so identity is built again. Day 2 is a day with
        # new events only, what most days are.
        days = []
        for day in (1, 2):
            added = add_next_day_events(WORK / "landing", args.seed, day)
            days.append(segmint_run(env, WORK / f"day_{day}.log"))
            print(f"day {day}, 1% new events: {days[-1]['wall']:.1f} s ({days[-1]['status']})",
                  flush=True)  # fmt: skip
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True).stdout.strip()  # fmt: skip
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores,"
        f" {head}, {args.customers:,} customers (seed {args.seed}), {added:,} new events"
        + (", CRM sync to the emulator" if args.crm else ""),
        "",
        "| run | `segmint run` wall (s) | Dagster run (s) | status |",
        "|---|---:|---:|---|",
        f"| full | {full['wall']:.1f} | {full['pipeline']:.1f} | {full['status']} |",
        *(f"| day {n}, 1% new events | {run['wall']:.1f} | {run['pipeline']:.1f} | "
          f"{run['status']} |" for n, run in enumerate(days, 1)),
        "",
        *(f"Day {n} / full: {run['wall'] / full['wall']:.1%} of the command's wall time, "
          f"{run['pipeline'] / full['pipeline']:.1%} of the run's."
          for n, run in enumerate(days, 1)),
        "",
        "| step | full (s) | day 1 (s) | day 2 (s) |",
        "|---|---:|---:|---:|",
    ]  # fmt: skip
    for step, seconds in full["steps"].items():
        lines.append(
            f"| {step} | {seconds:.1f} | "
            + " | ".join(f"{run['steps'].get(step, 0.0):.1f}" for run in days)
            + " |"
        )
    prepend(RESULTS, "# A run with 1% new events\n\n", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
