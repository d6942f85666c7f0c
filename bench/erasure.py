"""Erasure cost and reach on a built warehouse (bench/results/erasure.md).

    python bench/erasure.py --customers 20000 --requests 10 --repeat 3
    python bench/erasure.py --labelled tests/data/fake_1000.csv --requests 40

--labelled: a public labelled person file (splink's fake_1000 layout: typos, variant emails,
missing fields; ``cluster`` is the true person) becomes CRM contacts and is built once. K
true persons with at least two records are picked at random; each asks for erasure by the
email of one of their records, all in one batch. Measured against the truth: the share of
those persons' records removed (reach: records the identity graph did not link to the
requested one survive) and the records of other persons removed (over-erasure).

Generates N persons, loads them and runs `dbt build` once (the ci target, in bench/work/).
Then, per repetition, on a fresh copy of that warehouse: K erasure requests for customers
picked at random (each by one of their emails) are filed, `segmint.privacy.erase` is timed
(graph known: every request carried out), and the audit of one of those emails is timed.
Every erased email is audited afterwards: the run fails if a trace is left.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import append  # noqa: E402
from segmint.config import DEV_PII_SALT  # noqa: E402
from segmint.generate import GeneratorConfig, generate  # noqa: E402
from segmint.load import load  # noqa: E402
from segmint.privacy import audit, erase, hash_identifier  # noqa: E402
from segmint.warehouse import DuckDBWarehouse  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "erasure.md"
TITLE = "# Erasure (bench/erasure.py)\n"
DBT = str(Path(sys.executable).parent / "dbt")


def load_and_build(landing: Path, work: Path) -> Path:
    """`segmint load` and `dbt build` (ci target, development salt) into work/w.duckdb."""
    warehouse = work / "w.duckdb"
    load(landing, warehouse)
    env = {**os.environ, "SEGMINT_DUCKDB_PATH": str(warehouse), "SEGMINT_PII_SALT": DEV_PII_SALT}
    subprocess.run(
        [DBT, "build", "--exclude", "test_type:unit", "--project-dir", str(ROOT),
         "--profiles-dir", str(ROOT), "--target", "ci", "--target-path", str(work / "target")],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return warehouse


def build(work: Path, customers: int, seed: int) -> Path:
    landing = generate(GeneratorConfig(customers, seed=seed, out=work / "landing")).out
    warehouse = load_and_build(landing, work)
    with duckdb.connect(str(warehouse)) as con:
        erase(con, DEV_PII_SALT)  # the generator's own requests, out of the way
    return warehouse


def one(source: Path, work: Path, requests: int, rng: random.Random) -> dict:
    copy = work / "copy.duckdb"
    shutil.copyfile(source, copy)
    with duckdb.connect(str(copy)) as con:
        emails = [
            r[0]
            for r in con.execute(
                "select min(c.email) from staging.stg_crm__contacts as c "
                "join marts.dim_customer_identities as i "
                "on i.identifier_type = 'email' and i.identifier_value = c.email_hash "
                "where c.email is not null and not i.is_excluded "
                "group by i.customer_id order by i.customer_id"
            ).fetchall()
        ]
        chosen = rng.sample(emails, requests)
        for n, email in enumerate(chosen):
            con.execute(
                "insert into raw.erasure_requests (request_id, email, requested_at) "
                "values (?, ?, '2026-11-30T00:00:00Z')",
                [f"era_bench_{n}", email],
            )
        started = time.perf_counter()
        report = erase(con, DEV_PII_SALT)
        erase_seconds = time.perf_counter() - started
        started = time.perf_counter()
        audit(con, {"email": chosen[0], "hash": hash_identifier(DEV_PII_SALT, chosen[0])})
        audit_seconds = time.perf_counter() - started
        left = [e for e in chosen if audit(con, {"email": e})]
        if left:
            raise SystemExit(f"traces left for {len(left)} erased emails")
    # What the job and `segmint privacy erase` do next: rewrite the file without the
    # deleted rows' bytes (DuckDBWarehouse.compact).
    started = time.perf_counter()
    compaction = DuckDBWarehouse(copy).compact()
    compact_seconds = time.perf_counter() - started
    copy.unlink()
    return {
        "erase": erase_seconds,
        "audit": audit_seconds,
        "compact": compact_seconds,
        "bytes": (compaction.bytes_before, compaction.bytes_after),
        "customers": report.customers,
        "steps": report.seconds,
        "rows": report.total_rows,
        "tables": len(report.rows_removed),
    }


def labelled(path: Path, requests: int, seed: int) -> str:
    import pandas as pd

    from segmint.evaluate import landing_from_labelled_people

    work = ROOT / "bench" / "work" / "erasure"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        landing = work / "landing"
        landing_from_labelled_people(path, landing)
        warehouse = load_and_build(landing, work)
        people = pd.read_csv(path, dtype=str, keep_default_na=False)
        sizes = people.groupby("cluster").size()
        rng = random.Random(seed)
        chosen = rng.sample(sorted(sizes[sizes >= 2].index, key=int), requests)
        with duckdb.connect(str(warehouse)) as con:
            before = {
                r[0] for r in con.execute("select contact_id from raw.crm_contacts").fetchall()
            }
            for n, cluster in enumerate(chosen):
                rows = people[(people.cluster == cluster) & (people.email != "")]
                if rows.empty:
                    continue
                email = rows.iloc[rng.randrange(len(rows))].email
                con.execute(
                    "insert into raw.erasure_requests (request_id, email, requested_at) "
                    "values (?, ?, '2026-11-30T00:00:00Z')",
                    [f"era_{n}", email],
                )
            started = time.perf_counter()
            report = erase(con, DEV_PII_SALT)
            seconds = time.perf_counter() - started
            after = {
                r[0] for r in con.execute("select contact_id from raw.crm_contacts").fetchall()
            }
            asked = people[people.cluster.isin(chosen)]
            emails = set(asked.email[asked.email != ""].str.strip().str.lower())
            traced = sum(1 for e in emails if audit(con, {"email": e}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    removed = before - after
    theirs = set(asked.unique_id) & before
    others = removed - theirs
    reach = len(theirs & removed) / len(theirs)
    return "\n".join(
        [
            f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {path.name} (public), "
            f"{platform.machine()}, {os.cpu_count()} cores\n",
            f"{len(people):,} records, {people.cluster.nunique()} true persons. "
            f"{len(report.requests)} persons with at least two records asked for erasure, "
            f"each by the email of one record, in one batch (seed {seed}); "
            f"erase() took {seconds:.2f} s.\n",
            "| measure | value |",
            "|---|---:|",
            f"| their records | {len(theirs)} |",
            f"| removed (reach) | {len(theirs & removed)} ({reach:.1%}) |",
            f"| left (not linked to the requested record by the identity graph) | "
            f"{len(theirs - removed)} |",
            f"| records of other persons removed (over-erasure) | {len(others)} |",
            f"| their distinct emails still found by the audit | {traced} of {len(emails)} |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--labelled", type=Path, help="a labelled person file (fake_1000)")
    parser.add_argument(
        "--warehouse", type=Path, help="a warehouse built before (by this bench): skip the build"
    )
    args = parser.parse_args()
    if args.labelled:
        text = labelled(args.labelled, args.requests, args.seed)
        append(RESULTS, TITLE, text)
        return
    work = ROOT / "bench" / "work" / "erasure"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        started = time.perf_counter()
        if args.warehouse:
            source = work / "source.duckdb"
            shutil.copyfile(args.warehouse, source)
            with duckdb.connect(str(source)) as con:
                erase(con, DEV_PII_SALT)  # the generator's own requests, if still pending
        else:
            source = build(work, args.customers, args.seed)
        build_seconds = time.perf_counter() - started
        rng = random.Random(args.seed)
        runs = [one(source, work, args.requests, rng) for _ in range(args.repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    erase_s = [r["erase"] for r in runs]
    audit_s = [r["audit"] for r in runs]
    compact_s = [r["compact"] for r in runs]
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores\n",
        f"{args.customers:,} generated persons (seed {args.seed}), warehouse "
        + (
            f"built before ({args.warehouse.name})"
            if args.warehouse
            else f"built in {build_seconds:.0f} s"
        )
        + f"; {args.requests} erasure requests per run, {args.repeat} runs "
        "on fresh copies. Every erased email audited afterwards: no trace.\n",
        "| measure | median | runs |",
        "|---|---:|---|",
        f"| erase() of {args.requests} requests | {statistics.median(erase_s):.2f} s | "
        + ", ".join(f"{s:.2f}" for s in erase_s)
        + " |",
        f"| audit of one email (every table, view, text column) | "
        f"{statistics.median(audit_s):.2f} s | " + ", ".join(f"{s:.2f}" for s in audit_s) + " |",
        f"| rewrite of the file afterwards (compact) | "
        f"{statistics.median(compact_s):.2f} s | "
        + ", ".join(f"{s:.2f}" for s in compact_s)
        + " |",
        "",
        "File size before and after the rewrite (MB): "
        + ", ".join(f"{a / 1e6:,.0f} -> {b / 1e6:,.0f}" for a, b in (r["bytes"] for r in runs))
        + ".",
        "Per run: customers erased "
        + ", ".join(str(r["customers"]) for r in runs)
        + "; rows removed "
        + ", ".join(f"{r['rows']:,}" for r in runs)
        + f" (from {runs[0]['tables']} tables); peak memory of this process {peak:.0f} MB.",
        "Median seconds per step: "
        + ", ".join(
            f"{step} {statistics.median(r['steps'].get(step, 0.0) for r in runs):.2f}"
            for step in runs[0]["steps"]
        )
        + ".",
    ]
    text = "\n".join(lines) + "\n"
    append(RESULTS, TITLE, text)


if __name__ == "__main__":
    main()
