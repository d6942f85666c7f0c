"""The pipeline `make demo` runs, timed per step (bench/results/demo.md).

    python bench/demo.py [--compare REV] [--repeat 3] [--customers 2000]

Each measurement is `segmint demo` in a fresh process with a fresh warehouse, landing folder
and Dagster instance, at the same paths each time for a tree (as `make demo` always uses
`warehouse/segmint.duckdb`: dbt's partial parse from the last run, or from the code
location's first parse on a new clone, stays valid). Reported: the
Dagster run's wall time (first step start to last step end, from the instance's event log),
the whole command's wall time, and each step's time.
With ``--compare REV`` a git worktree of that revision runs too, on the same interpreter,
alternating which goes first. One unrecorded run per tree first lets dbt write its partial
parse file for that tree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import LAST_RUN_STEPS, prepend  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "demo.md"


def demo_once(tree: Path, customers: int, scratch: Path) -> dict:
    shutil.rmtree(scratch, ignore_errors=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "SEGMINT_PROJECT_DIR": str(tree),
        "DAGSTER_HOME": str(scratch / "home"),
        "SEGMINT_DUCKDB_PATH": str(scratch / "w" / "segmint.duckdb"),
        "SEGMINT_LANDING_DIR": str(scratch / "landing"),
        "SEGMINT_DATA_DOCS_DIR": str(scratch / "docs"),
        "SEGMINT_EXPORT_DIR": str(scratch / "exports"),
        "PYTHONWARNINGS": "ignore",
    }
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "segmint.cli", "demo", "--customers", str(customers)],
                   cwd=tree, env=env, capture_output=True, check=True, timeout=1800)  # fmt: skip
    wall = time.perf_counter() - start
    out = subprocess.run([sys.executable, "-c", LAST_RUN_STEPS], cwd=tree, env=env, text=True,
                         capture_output=True, check=True)  # fmt: skip
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", help="a git revision to measure side by side")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           text=True, capture_output=True).stdout.strip()  # fmt: skip
    trees = {f"this tree ({head}{' + changes' if dirty else ''})": ROOT}
    if args.compare:
        other = ROOT / "bench" / "work" / f"tree-{args.compare}"
        if not other.exists():
            subprocess.run(["git", "worktree", "add", "--detach", str(other), args.compare],
                           cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        trees[args.compare] = other
    base = Path(tempfile.mkdtemp(prefix="segmint-bench-demo-"))
    scratch = {name: base / f"tree{i}" for i, name in enumerate(trees)}
    for name, tree in trees.items():
        demo_once(tree, args.customers, scratch[name])  # dbt parses at these paths; not kept
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    names = list(trees)
    for i in range(args.repeat):
        for name in names if i % 2 == 0 else names[::-1]:
            r = demo_once(trees[name], args.customers, scratch[name])
            runs[name].append(r)
            print(f"{name}: pipeline {r['pipeline']:.1f} s, command {r['wall']:.1f} s",
                  flush=True)  # fmt: skip
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores,"
        f" {args.customers:,} people, {args.repeat} runs each, alternating",
        "",
        "| tree | pipeline, median (s) | pipeline runs (s) | `segmint demo` median (s) |",
        "|---|---:|---|---:|",
    ]
    for name, rs in runs.items():
        pipe = [r["pipeline"] for r in rs]
        lines.append(f"| {name} | {statistics.median(pipe):.1f} | "
                     f"{', '.join(f'{p:.1f}' for p in pipe)} | "
                     f"{statistics.median(r['wall'] for r in rs):.1f} |")  # fmt: skip
    steps = list(next(iter(runs.values()))[0]["steps"])
    lines += ["", "Median seconds per step:", "",
              "| step | " + " | ".join(runs) + " |", "|---|" + "---:|" * len(runs)]  # fmt: skip
    for step in steps:
        cells = [f"{statistics.median(r['steps'].get(step, 0.0) for r in rs):.1f}"
                 for rs in runs.values()]  # fmt: skip
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    shutil.rmtree(base, ignore_errors=True)
    prepend(RESULTS, "# The demo's pipeline\n\n", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
