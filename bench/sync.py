"""CRM sync throughput against the local emulator under a rate limit (bench/results/sync.md).

    python bench/sync.py --records 20000 --limit 10
    python bench/sync.py --all-at-once --records 4000 --limit 10 [--repeat 2]

A throw-away warehouse gets N synthetic rows of activation.crm_segment_tags for one destination
(email-keyed, so every record is created through the API). The emulator enforces `--limit`
requests per second (429 above it) and the client is configured with the same limit. The
sync is timed; the achieved request rate is compared with the limit, and records per second
with the most the limit allows (limit x batch size / requests per batch).

--all-at-once: N rows for each of hubspot, salesforce, webhook and file_export, each API
under its own limit; the same sync run destination after destination and all at once
(sync_concurrently), alternating which goes first, on a fresh emulator and warehouse each.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import append  # noqa: E402
from segmint.sync.config import load_destinations  # noqa: E402
from segmint.sync.engine import sync_concurrently, sync_destination  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "sync.md"
# Requests per batch of changes: HubSpot reads the current tags, then upserts; Salesforce
# retrieves, then patches; the webhook posts once.
CALLS_PER_BATCH = {"hubspot": 2, "salesforce": 2, "webhook": 1}


def synthetic_warehouse(path: Path, destination: str, records: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute("create schema if not exists activation")
        exists = con.execute(
            "select count(*) from duckdb_tables() where table_name = 'crm_segment_tags'"
        ).fetchone()[0]
        con.execute(f"""
            {
            "insert into activation.crm_segment_tags"
            if exists
            else "create table activation.crm_segment_tags as"
        }
            select '{destination}:' || email as destination_record_id,
                   '{destination}' as destination, 'cus_' || i as customer_id,
                   email as record_key, 'email' as key_type, null::varchar as crm_record_id,
                   email, 'email_marketing' as consent_purpose,
                   'segmint_lifecycle_active;segmint_rfm_champions' as tags, 2::bigint as tag_count,
                   md5('segmint_lifecycle_active;segmint_rfm_champions') as tag_hash
            from (select i, 'person' || i || '@bench.example' as email
                  from range({records}) t(i))
        """)
        con.execute(
            "create table if not exists marts.dim_customers "
            "(customer_id varchar, is_erased boolean)"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/_emulator/requests", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def bench(records: int, limit: float, name: str) -> str:
    (base,) = [d for d in load_destinations() if d.name == name]
    destination = base.model_copy(update={"requests_per_second": limit})
    server, url = _emulator(limit)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warehouse = Path(tmp) / "bench.duckdb"
            synthetic_warehouse(warehouse, name, records)
            os.environ[destination.url_env] = url + ("/webhook" if base.type == "webhook" else "")
            for var in (destination.token_env, destination.secret_env):
                if var:
                    os.environ[var] = "bench"
            with duckdb.connect(str(warehouse)) as con:
                started = time.perf_counter()
                report = sync_destination(con, destination, environ=os.environ)
                seconds = time.perf_counter() - started
        if base.type == "webhook":
            batches = httpx.get(f"{url}/_emulator/webhook").json()
            created = sum(len(b["records"]) for b in batches)
        else:
            created = len(httpx.get(f"{url}/_emulator/contacts?crm={base.type}").json())
    finally:
        server.terminate()
        server.wait(timeout=10)
    calls = report.stats.api_calls
    ceiling = limit * destination.batch_size / CALLS_PER_BATCH[base.type]
    cpus = len(os.sched_getaffinity(0))
    return "\n".join(
        [
            f"\n## {name}: {records:,} records, limit {limit:g} requests/s\n",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {cpus} CPUs, "
            f"Python {platform.python_version()}\n",
            "| records | batch | requests | 429s | seconds | requests/s | of limit "
            "| records/s | of the most the limit allows |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {report.succeeded:,} | {destination.batch_size} | {calls:,} | "
            f"{report.stats.throttled} | {seconds:.1f} | {calls / seconds:.2f} | "
            f"**{calls / seconds / limit:.1%}** | {report.succeeded / seconds:,.0f} | "
            f"{report.succeeded / seconds / ceiling:.1%} |",
            "",
            f"Records held by the emulator afterwards: {created:,} (status {report.status}, "
            f"{report.rejected} rejected).",
            "",
        ]
    )


def _emulator(limit: float) -> tuple[subprocess.Popen, str]:
    """The emulator as its own process (`segmint crm-emulator`), as a CRM would be."""
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "segmint"), "crm-emulator", "--port", str(port),
         "--requests-per-second", str(limit), "--webhook-secret", "bench"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait_for(url)
    return server, url


def bench_all_at_once(records: int, limit: float, repeat: int) -> str:
    names = ["hubspot", "salesforce", "webhook", "file_export"]
    chosen = [
        d.model_copy(update={"requests_per_second": limit} if d.type != "file" else {})
        for d in load_destinations()
        if d.name in names
    ]
    times: dict[str, list[float]] = {"in turn": [], "at once": []}
    confirmed: dict[str, tuple[int, int]] = {}
    for run in range(repeat):
        order = ("in turn", "at once") if run % 2 == 0 else ("at once", "in turn")
        for mode in order:
            server, url = _emulator(limit)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    warehouse = Path(tmp) / "bench.duckdb"
                    for d in chosen:
                        synthetic_warehouse(warehouse, d.name, records)
                    environ = {
                        "SEGMINT_HUBSPOT_URL": url, "SEGMINT_HUBSPOT_TOKEN": "bench",
                        "SEGMINT_SALESFORCE_URL": url, "SEGMINT_SALESFORCE_TOKEN": "bench",
                        "SEGMINT_WEBHOOK_URL": url + "/webhook",
                        "SEGMINT_WEBHOOK_SECRET": "bench", "SEGMINT_EXPORT_DIR": tmp,
                    }  # fmt: skip
                    os.environ.update(environ)
                    with duckdb.connect(str(warehouse)) as con:
                        started = time.perf_counter()
                        if mode == "in turn":
                            reports = [sync_destination(con, d, environ=os.environ) for d in chosen]
                        else:
                            reports = [r.report for r in sync_concurrently(con, chosen, environ)]
                        times[mode].append(time.perf_counter() - started)
                    confirmed[mode] = (sum(r.sent for r in reports),
                                       sum(r.succeeded for r in reports))  # fmt: skip
            finally:
                server.terminate()
                server.wait(timeout=10)
    cpus = len(os.sched_getaffinity(0))
    med = {mode: sorted(t)[len(t) // 2] for mode, t in times.items()}
    return "\n".join(
        [
            f"\n## all four destinations: {records:,} records each, limit {limit:g} requests/s "
            "per API\n",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {cpus} CPUs, "
            f"Python {platform.python_version()}; {repeat} runs each, alternating which "
            "goes first (median)\n",
            "| sync | seconds (median) | runs | records sent | confirmed |",
            "|---|---:|---|---:|---:|",
            *(
                f"| {mode} | {med[mode]:.1f} | {', '.join(f'{t:.1f}' for t in times[mode])} "
                f"| {confirmed[mode][0]:,} | {confirmed[mode][1]:,} |"
                for mode in times
            ),
            "",
            f"At once takes {med['at once'] / med['in turn']:.0%} of the time in turn. Salesforce "
            "only updates contacts it holds: its email-keyed rows are looked up and refused "
            "('contact not found'), which costs the same API calls.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--limit", type=float, default=10.0)
    parser.add_argument("--destination", default="hubspot")
    parser.add_argument("--all-at-once", action="store_true",
                        help="all destinations in turn against all at once")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if args.all_at_once:
        text = bench_all_at_once(args.records, args.limit, args.repeat)
    else:
        text = bench(args.records, args.limit, args.destination)
    append(RESULTS, "# CRM sync benchmarks\n\nWritten by `bench/sync.py`; newest last.\n", text)


if __name__ == "__main__":
    main()
