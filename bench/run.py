"""Benchmark harness: wall time and peak memory of every pipeline stage at several scales.

    python bench/run.py --scales 10000,100000,1000000 [--out bench/results/foundation.md]

Each stage runs as its own process (the way a user runs it), so its peak resident memory is
measured by the kernel (``wait4``) including any child process. Not a test: nothing here
asserts a target; the figures go into the results file and the issue notes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from segmint.evaluate import evaluate_identity

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
console = Console()


@dataclass
class Measure:
    scale: int
    stage: str
    seconds: float
    peak_mb: float
    rows: str


def timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MB of it and its children)."""
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed, see {log}")
    return elapsed, usage.ru_maxrss / 1024


def dbt_models(warehouse: Path, target: Path, *args: str) -> tuple[float, dict[str, float]]:
    """Run dbt on a warehouse; return wall seconds and each model's SQL time (run_results)."""
    env = {**os.environ, "SEGMINT_DUCKDB_PATH": str(warehouse), "SEGMINT_DBT_TARGET": "ci"}
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "dbt"), *args, "--project-dir", str(ROOT), "--profiles-dir", str(ROOT),
         "--target-path", str(target)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:])
    runs = json.loads((target / "run_results.json").read_text())["results"]
    return wall, {
        r["unique_id"].split(".")[-1]: r["execution_time"]
        for r in runs
        if r["unique_id"].startswith("model.")
    }


def count(db: Path, sql: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def bench_scale(scale: int, work: Path, seed: int) -> list[Measure]:
    folder = work / str(scale)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    landing, db = folder / "landing", folder / "warehouse.duckdb"
    env = {
        **os.environ,
        "SEGMINT_DUCKDB_PATH": str(db),
        "SEGMINT_LANDING_DIR": str(landing),
        "SEGMINT_DBT_TARGET": "ci",
        "DO_NOT_TRACK": "1",
    }
    out = []
    secs, mb = timed(
        [str(BIN / "segmint"), "generate", "--customers", str(scale), "--seed", str(seed),
         "--out", str(landing)], env, folder / "generate.log",
    )  # fmt: skip
    files_mb = sum(p.stat().st_size for p in landing.glob("*.*")) / 2**20
    out.append(Measure(scale, "generate", secs, mb, f"{files_mb:,.0f} MB of Parquet"))

    secs, mb = timed([str(BIN / "segmint"), "load", str(landing)], env, folder / "load.log")
    rows = count(db, "select sum(rows_read) from raw.loaded_files")
    out.append(Measure(scale, "load (validate + write raw)", secs, mb, f"{rows:,} rows"))

    dbt = [str(BIN / "dbt"), "build", "--project-dir", str(ROOT), "--profiles-dir", str(ROOT),
           "--target", "ci"]  # fmt: skip
    secs, mb = timed([*dbt, "--select", "path:seeds", "path:models/staging"], env,
                     folder / "dbt_staging.log")  # fmt: skip
    events = count(db, "select count(*) from staging.stg_web__events")
    out.append(Measure(scale, "dbt build staging (+ tests)", secs, mb, f"{events:,} events"))

    secs, mb = timed([*dbt, "--select", "path:models/intermediate/identity", "--exclude",
                      "test_type:unit"], env,
                     folder / "dbt_identity.log")  # fmt: skip
    records = count(db, "select count(*) from intermediate.int_identity__record_customers")
    out.append(Measure(scale, "identity stage (+ tests)", secs, mb, f"{records:,} records"))

    secs, mb = timed([*dbt, "--select", "path:models/intermediate/identity+", "--exclude",
                      "path:models/intermediate/identity", "test_type:unit"], env,
                     folder / "dbt_marts.log")  # fmt: skip
    customers = count(db, "select count(*) from marts.dim_customers")
    out.append(Measure(scale, "customer marts on it (+ tests)", secs, mb,
                       f"{customers:,} customers"))  # fmt: skip

    scores = evaluate_identity(db, landing / "truth")
    out.append(Measure(scale, "identity quality vs truth", 0.0, 0.0,
                       f"P {scores.precision:.4f} R {scores.recall:.4f} F1 {scores.f1:.4f}; "
                       f"over-merged {scores.over_merged_customers}, "
                       f"under-merged {scores.under_merged_persons}"))  # fmt: skip
    return out


def render(measures: list[Measure]) -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}.",
        "",
        "| customers | stage | wall time (s) | peak RSS (MB) | volume |",
        "|---:|---|---:|---:|---|",
    ]
    for m in measures:
        timing = (f"{m.seconds:,.1f} | {m.peak_mb:,.0f}" if m.seconds or m.peak_mb
                  else "- | -")  # fmt: skip
        lines.append(f"| {m.scale:,} | {m.stage} | {timing} | {m.rows} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="10000,100000", help="comma-separated customers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.md")
    parser.add_argument("--keep", action="store_true", help="keep the generated warehouses")
    args = parser.parse_args()
    measures: list[Measure] = []
    for scale in (int(s) for s in args.scales.split(",")):
        console.print(f"[bold]{scale:,} customers[/bold]")
        measures.extend(bench_scale(scale, args.work, args.seed))
        if not args.keep:
            shutil.rmtree(args.work / str(scale), ignore_errors=True)
    table = Table(title="segmint bench")
    for col in ("customers", "stage", "wall time (s)", "peak RSS (MB)", "volume"):
        table.add_column(col)
    for m in measures:
        table.add_row(f"{m.scale:,}", m.stage, f"{m.seconds:,.1f}", f"{m.peak_mb:,.0f}", m.rows)
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(measures))
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
