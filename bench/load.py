"""`segmint load` against a bare warehouse ingest of the same files (bench/results/load.md).

    python bench/load.py --customers 100000 --repeat 3
    python bench/load.py --landing path/to/landing --repeat 3

The bare ingest is the physical floor: DuckDB reads each landing file into a table
(`create table as select * from read_parquet(...)`, `read_csv`, `read_json`), with no
contract, no quarantine and no bookkeeping. Each run is its own process on a fresh warehouse
file, alternating which goes first; wall time and the process's peak memory are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import append  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "load.md"


def _bare(landing: Path, db: Path) -> None:
    import duckdb

    from segmint.load import READERS, discover

    found, _ = discover(landing)
    with duckdb.connect(str(db)) as con:
        for n, (table, path) in enumerate(found):
            kind = READERS[path.suffix.lower()]
            reader = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json"}[kind]
            con.execute(f"create table {table}_{n} as select * from {reader}('{path}')")


def _segmint(landing: Path, db: Path, memory_limit: str | None) -> None:
    from segmint.load import load

    load(landing, db, **({"memory_limit": memory_limit} if memory_limit else {}))


def one(kind: str, landing: Path, db: Path, memory_limit: str | None = None) -> None:
    started = time.perf_counter()
    if kind == "bare":
        _bare(landing, db)
    else:
        _segmint(landing, db, memory_limit)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak}))


def run(kind: str, landing: Path, work: Path, memory_limit: str | None = None) -> dict:
    db = work / f"{kind}.duckdb"
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, "--landing", str(landing), "--db", str(db),
         *(["--memory-limit", memory_limit] if memory_limit else [])],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    db.unlink(missing_ok=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--landing", type=Path, help="landing files to load (default: generate)")
    parser.add_argument("--memory-limit", help="the loader's DuckDB memory limit (default: "
                        "segmint.config.LOAD_MEMORY_LIMIT)")  # fmt: skip
    parser.add_argument("--one", choices=("bare", "segmint"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.landing, args.db, args.memory_limit)
        return
    work = ROOT / "bench" / "work" / "load"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        landing = args.landing
        what = f"landing files {landing}" if landing else None
        if landing is None:
            from segmint.generate import GeneratorConfig, generate

            landing = generate(GeneratorConfig(args.customers, seed=args.seed, out=work / "l")).out
            what = f"{args.customers:,} generated persons (seed {args.seed}, Parquet)"
        files = [p for p in landing.rglob("*") if p.is_file() and "truth" not in p.parts]
        size = sum(p.stat().st_size for p in files) / 1e6
        runs: dict[str, list[dict]] = {"segmint": [], "bare": []}
        for i in range(args.repeat):
            order = ("segmint", "bare") if i % 2 == 0 else ("bare", "segmint")
            for kind in order:
                runs[kind].append(run(kind, landing, work, args.memory_limit))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def cell(kind: str, key: str) -> str:
        values = [r[key] for r in runs[kind]]
        return f"{statistics.median(values):,.1f} ({', '.join(f'{v:,.1f}' for v in values)})"

    ratio = statistics.median(r["seconds"] for r in runs["segmint"]) / statistics.median(
        r["seconds"] for r in runs["bare"]
    )
    text = "\n".join(
        [
            f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
            f"{os.cpu_count()} cores\n",
            f"{what}: {len(files)} files, {size:,.0f} MB. {args.repeat} runs each, alternating, "
            "each in its own process on a fresh warehouse file"
            + (f"; loader memory limit {args.memory_limit}" if args.memory_limit else "")
            + ".\n",
            "| | seconds, median (runs) | peak memory MB, median (runs) |",
            "|---|---:|---:|",
            f"| `segmint load` | {cell('segmint', 'seconds')} | {cell('segmint', 'peak_mb')} |",
            f"| bare DuckDB ingest | {cell('bare', 'seconds')} | {cell('bare', 'peak_mb')} |",
            "",
            f"`segmint load` / bare ingest: {ratio:.2f}x.",
            "",
        ]
    )
    append(RESULTS, "# Loading (bench/load.py)\n", text)


if __name__ == "__main__":
    main()
