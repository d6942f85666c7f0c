"""Time to load the Dagster code location, as Dagster does (bench/results/code_location.md).

    python bench/code_location.py [--compare REV] [--repeat 5]

Each measurement is a fresh process that imports ``orchestration.definitions``, calls
``defs()`` and resolves the asset graph: what `dagster dev`, every run a launcher starts and
`segmint run` pay before the first step. Reported: wall time, peak resident memory, and
which heavy libraries were imported on the way. With ``--compare REV``, a git worktree of
that revision is measured too, alternating which goes first. With ``--no-bytecode``, this
tree is also measured as it loads without compiled bytecode (an empty PYTHONPYCACHEPREFIX
and PYTHONDONTWRITEBYTECODE: what an install without `make install`'s compile step costs).
A first, unrecorded load of each tree lets it parse its dbt project (the manifest is cached
after it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import prepend  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "code_location.md"
HEAVY = ("great_expectations", "sklearn", "matplotlib", "pandas", "scipy", "dagster_dbt", "dbt")

PROBE = f"""
import json, resource, sys, time
t0 = time.perf_counter()
from orchestration.definitions import defs
defs().resolve_asset_graph()
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "peak_mb": peak,
                  "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def load_once(tree: Path, scratch: Path, extra_env: dict[str, str] | None = None) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "SEGMINT_PROJECT_DIR": str(tree),
        "DAGSTER_HOME": str(scratch / "home"),
        "SEGMINT_DUCKDB_PATH": str(scratch / "w" / "segmint.duckdb"),
        "PYTHONWARNINGS": "ignore",
        **(extra_env or {}),
    }
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tree, env=env, capture_output=True,
                         text=True, timeout=900, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", help="a git revision to measure side by side")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-bytecode", action="store_true",
                        help="also measure this tree without compiled bytecode")  # fmt: skip
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="segmint-bench-codeloc-"))
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True).stdout.strip()  # fmt: skip
    trees = {f"this tree ({head})": ROOT}
    envs: dict[str, dict[str, str]] = {}
    if args.no_bytecode:
        name = f"this tree ({head}), no bytecode"
        trees[name] = ROOT
        empty = scratch / "no-pycache"
        empty.mkdir()
        envs[name] = {"PYTHONPYCACHEPREFIX": str(empty), "PYTHONDONTWRITEBYTECODE": "1"}
    if args.compare:
        other = ROOT / "bench" / "work" / f"tree-{args.compare}"
        if not other.exists():
            subprocess.run(["git", "worktree", "add", "--detach", str(other), args.compare],
                           cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        trees[args.compare] = other
    for name, tree in trees.items():
        load_once(tree, scratch, envs.get(name))  # parse the dbt project once; not recorded
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    names = list(trees)
    for i in range(args.repeat):
        for name in names if i % 2 == 0 else names[::-1]:
            runs[name].append(load_once(trees[name], scratch, envs.get(name)))
            print(name, f"{runs[name][-1]['seconds']:.1f} s", flush=True)
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} cores, {args.repeat} runs each, alternating",
        "",
        "| tree | median load (s) | runs (s) | peak RSS (MB) | heavy libraries loaded |",
        "|---|---:|---|---:|---|",
    ]
    for name, rs in runs.items():
        secs = [r["seconds"] for r in rs]
        lines.append(
            f"| {name} | {statistics.median(secs):.1f} | {', '.join(f'{s:.1f}' for s in secs)} "
            f"| {statistics.median(r['peak_mb'] for r in rs):.0f} | {', '.join(rs[0]['heavy'])} |"
        )
    prepend(RESULTS, "# Code location load time\n\n", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
