"""A full run of the daily job at scale: each step's time and peak memory (results: full_run.md).

    python bench/full_run.py --customers 1000000 [--seed 11]
    python bench/full_run.py --landing path/to/landing     # files generated before

Runs `segmint run` on a new warehouse in its own process. While it runs, the resident memory
of its whole process tree (the run's process and every child: the dbt processes) is sampled
from /proc every 0.2 s; each step's peak is the largest sample inside the step's window
from the Dagster event log. `segmint run` executes steps one at a time, so the windows do
not overlap; the run's process keeps what Python allocated in earlier steps, so a Python
step's peak is an upper bound of its own. No CRM destination is configured (the file export
runs), as in bench/incremental_run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import prepend  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "full_run.md"
WORK = ROOT / "bench" / "work" / "full_run"
PAGE = os.sysconf("SC_PAGE_SIZE")

# Each step's window (unix seconds) from the last run's event log, as JSON.
STEP_WINDOWS = """
import json, dagster as dg
with dg.DagsterInstance.get() as instance:
    run = instance.get_runs(limit=1)[0]
    stats = instance.get_run_step_stats(run.run_id)
    print(json.dumps({"status": run.status.value,
                      "steps": {s.step_key: [s.start_time, s.end_time] for s in stats
                                if s.start_time and s.end_time}}))
"""


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants, in MB (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])  # ppid: the 4th field, 2nd after the command
        rss[pid] = int(fields[21]) * PAGE  # rss in pages: the 24th field
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        members.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in members) / 2**20


def sampled_run(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, list]:
    """Run ``cmd``; return its wall seconds and the (unix time, tree MB) samples."""
    samples: list[tuple[float, float]] = []
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append((time.time(), tree_rss_mb(proc.pid)))
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        done.set()
        sampler.join()
        wall = time.perf_counter() - started
    if code:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}), see {log}")
    return wall, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--landing", type=Path, help="landing files to use instead of generating")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    from bench.incremental_run import environment

    env = {**environment(), "DAGSTER_HOME": str(WORK / "home"),
           "SEGMINT_DUCKDB_PATH": str(WORK / "w" / "segmint.duckdb"),
           "SEGMINT_LANDING_DIR": str(WORK / "landing"),
           "SEGMINT_DATA_DOCS_DIR": str(WORK / "docs"),
           "SEGMINT_EXPORT_DIR": str(WORK / "exports")}  # fmt: skip
    if args.landing:
        shutil.copytree(args.landing, WORK / "landing")
        source = f"landing files {args.landing}"
    else:
        subprocess.run([sys.executable, "-m", "segmint.cli", "generate", "--customers",
                        str(args.customers), "--seed", str(args.seed), "--out",
                        str(WORK / "landing")], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
        source = f"{args.customers:,} customers generated (seed {args.seed})"
    shutil.rmtree(WORK / "landing" / "truth", ignore_errors=True)
    wall, samples = sampled_run([sys.executable, "-m", "segmint.cli", "run"], env,
                                WORK / "run.log")  # fmt: skip
    windows = json.loads(
        subprocess.run([sys.executable, "-c", STEP_WINDOWS], cwd=ROOT, env=env, text=True,
                       capture_output=True, check=True).stdout.strip().splitlines()[-1]
    )  # fmt: skip
    steps = sorted(windows["steps"].items(), key=lambda item: item[1][0])
    pipeline = max(end for _, (_, end) in steps) - min(start for _, (start, _) in steps)
    size = (WORK / "w" / "segmint.duckdb").stat().st_size / 2**30
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True).stdout.strip()  # fmt: skip
    memory = os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores,"
        f" {memory:.0f} GiB, {head}, {source}",
        "",
        f"`segmint run`: {wall:.1f} s wall, Dagster run {pipeline:.1f} s, {windows['status']}; "
        f"peak memory of the process tree {max(mb for _, mb in samples):,.0f} MB; warehouse "
        f"file {size:.1f} GiB.",
        "",
        "| step | seconds | peak memory, process tree (MB) |",
        "|---|---:|---:|",
    ]
    for step, (start, end) in steps:
        inside = [mb for at, mb in samples if start <= at <= end]
        peak = f"{max(inside):,.0f}" if inside else "-"
        lines.append(f"| {step} | {end - start:.1f} | {peak} |")
    prepend(RESULTS, "# A full run at scale: time and peak memory per step\n\n",
            "\n".join(lines) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
