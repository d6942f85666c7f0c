"""Plan and apply one destination's sync against the warehouse's state tables.

Tables in schema ``sync`` (fixed column types):

- ``synced_records``: per destination and record key, the tags last confirmed by the
  destination. A record is written here in the same transaction that records its batch's
  outcome, so a confirmed record is never sent again, and a sync that crashes halfway
  resumes on the next run with only what is still missing.
- ``rejected_rows``: every record the destination refused, with the reason and payload.
- ``sync_runs``: the audit: one row per run and destination with the plan, the counts, the
  API calls, retries, throttling, duration, status and error.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from segmint import privacy, tables
from segmint.sync.clients import CallStats, client_for
from segmint.sync.config import Destination, DestinationError
from segmint.sync.plan import Plan, build_plan

TAGS_RELATION = "activation.crm_segment_tags"

TABLES = {
    "synced_records": """
        destination varchar not null,
        record_key varchar not null,
        customer_id varchar not null,
        key_type varchar not null,
        tags varchar not null,
        tag_hash varchar not null,
        crm_record_id varchar,
        synced_at timestamp not null,
        run_id varchar not null,
        primary key (destination, record_key)""",
    "rejected_rows": """
        run_id varchar not null,
        destination varchar not null,
        record_key varchar not null,
        customer_id varchar,
        action varchar not null,
        reason varchar not null,
        payload varchar not null,
        rejected_at timestamp not null""",
    "sync_runs": """
        run_id varchar not null,
        destination varchar not null,
        started_at timestamp not null,
        finished_at timestamp,
        duration_seconds double,
        dry_run boolean not null,
        forced boolean not null,
        status varchar not null,
        records_in_state bigint not null,
        desired_records bigint not null,
        creates bigint not null,
        updates bigint not null,
        removals bigint not null,
        erasures bigint not null,
        tags_added bigint not null,
        tags_removed bigint not null,
        sent bigint not null,
        succeeded bigint not null,
        rejected bigint not null,
        api_calls bigint not null,
        retries bigint not null,
        throttled bigint not null,
        error varchar,
        primary key (run_id, destination)""",
}


class GuardrailError(RuntimeError):
    """The plan would change more records than the destination allows without force."""


class SyncError(RuntimeError):
    """Delivery failed after every retry; what was confirmed stays confirmed."""


@dataclass
class SyncReport:
    run_id: str
    destination: str
    plan: Plan
    status: str
    sent: int
    succeeded: int
    rejected: int
    stats: CallStats
    seconds: float
    error: str | None = None

    def as_row(self, started: datetime, dry_run: bool, forced: bool) -> dict:
        return {
            "run_id": self.run_id,
            "destination": self.destination,
            "started_at": started,
            "finished_at": _utcnow(),
            "duration_seconds": round(self.seconds, 3),
            "dry_run": dry_run,
            "forced": forced,
            "status": self.status,
            **{k: v for k, v in self.plan.summary().items() if k not in ("destination",
                                                                          "change_share")},
            "sent": self.sent,
            "succeeded": self.succeeded,
            "rejected": self.rejected,
            "api_calls": self.stats.api_calls,
            "retries": self.stats.retries,
            "throttled": self.stats.throttled,
            "error": self.error,
        }  # fmt: skip


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_tables(con) -> None:
    tables.ensure_tables(con, "sync", TABLES)


def plan_destination(con, destination: Destination) -> Plan:
    ensure_tables(con)
    desired = con.execute(
        f"select * from {TAGS_RELATION} where destination = ?", [destination.name]
    ).df()
    state = con.execute(
        "select * from sync.synced_records where destination = ?", [destination.name]
    ).df()
    privacy.ensure_tables(con)
    erased = {
        r[0]
        for r in con.execute(
            "select customer_id from marts.dim_customers where is_erased "
            f"union select customer_id from {privacy.SCHEMA}.erased_customers"
        ).fetchall()
    }
    return build_plan(destination.name, desired, state, erased)


def _record_batch(con, destination: Destination, run_id: str, batch, outcomes) -> tuple[int, int]:
    """One transaction: confirmed records into the state, refused ones into rejected_rows."""
    now = _utcnow()
    pairs = list(zip(batch, outcomes, strict=True))
    kept = pd.DataFrame(
        [
            {
                "destination": destination.name,
                "record_key": c.record_key,
                "customer_id": c.customer_id,
                "key_type": c.key_type,
                "tags": ";".join(c.tags),
                "tag_hash": c.tag_hash,
                "crm_record_id": o.crm_record_id or c.crm_record_id,
                "synced_at": now,
                "run_id": run_id,
            }
            for c, o in pairs
            if o.ok and c.action in ("create", "update")
        ],
        columns=["destination", "record_key", "customer_id", "key_type", "tags", "tag_hash",
                 "crm_record_id", "synced_at", "run_id"],
    )  # fmt: skip
    dropped = pd.DataFrame(
        {
            "record_key": [
                c.record_key for c, o in pairs if o.ok and c.action in ("remove", "erase")
            ]
        },
        dtype=object,
    )
    rejected = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "destination": destination.name,
                "record_key": c.record_key,
                "customer_id": c.customer_id,
                "action": c.action,
                "reason": o.reason or "rejected",
                "payload": json.dumps(c.as_payload()),
                "rejected_at": now,
            }
            for c, o in pairs
            if not o.ok
        ],
        columns=["run_id", "destination", "record_key", "customer_id", "action", "reason",
                 "payload", "rejected_at"],
    )  # fmt: skip
    # Registered before the transaction (tables.transaction says why). A confirmed record
    # replaces its earlier state.
    frames = {"_kept": kept, "_dropped": dropped}
    with tables.registered(con, frames), tables.transaction(con):
        con.execute(
            "delete from sync.synced_records where destination = ? and record_key in ("
            "select record_key from _kept union all select record_key from _dropped)",
            [destination.name],
        )
        columns = ", ".join(kept.columns)
        con.execute(f"insert into sync.synced_records ({columns}) select {columns} from _kept")
        tables.insert_frame(con, "sync.rejected_rows", rejected)
    ok = sum(1 for _, o in pairs if o.ok)
    return ok, len(pairs) - ok


def _audit(con, report: SyncReport, started, dry_run, forced) -> None:
    tables.insert_frame(
        con, "sync.sync_runs", pd.DataFrame([report.as_row(started, dry_run, forced)])
    )


def sync_destination(
    con,
    destination: Destination,
    *,
    environ: Mapping[str, str],
    dry_run: bool = False,
    force: bool = False,
    run_id: str | None = None,
    write_lock: threading.Lock | None = None,
) -> SyncReport:
    """Plan, check the guardrail, then send the changes in batches (unless dry_run).

    ``environ`` holds the destination's URL, token and secret (the variables it names).

    write_lock, when given, is held for every warehouse write (the plan's table set-up, each
    batch's transaction, the audit row), so that destinations synced at once write one at a
    time while their API calls overlap.
    """
    writing = write_lock or contextlib.nullcontext()
    run_id = run_id or f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    started, clock = _utcnow(), time.perf_counter()
    with writing:
        plan = plan_destination(con, destination)
    stats = CallStats()
    report = SyncReport(run_id, destination.name, plan, "ok", 0, 0, 0, stats, 0.0)
    if plan.change_share > destination.max_change_share and not force:
        report.status = "aborted"
        report.error = (
            f"the plan changes {plan.changed_synced_records:,} of {plan.records_in_state:,} "
            "synced records "
            f"({plan.change_share:.1%}), above max_change_share {destination.max_change_share:.0%}"
            "; review it with a dry run and sync with force to apply"
        )
        report.seconds = time.perf_counter() - clock
        with writing:
            _audit(con, report, started, dry_run, force)
        raise GuardrailError(f"{destination.name}: {report.error}")
    if dry_run or not plan.changes:
        report.status = "dry_run" if dry_run else "ok"
        report.seconds = time.perf_counter() - clock
        with writing:
            _audit(con, report, started, dry_run, force)
        return report
    client = client_for(destination, stats, run_id, environ)
    try:
        size = destination.batch_size
        for start in range(0, len(plan.changes), size):
            batch = plan.changes[start : start + size]
            outcomes = client.send(batch)
            report.sent += len(batch)
            with writing:
                ok, bad = _record_batch(con, destination, run_id, batch, outcomes)
            report.succeeded += ok
            report.rejected += bad
        report.status = "partial" if report.rejected else "ok"
    except Exception as exc:
        report.status = "failed"
        report.error = f"{type(exc).__name__}: {exc}"[:2000]
        raise SyncError(
            f"{destination.name}: {report.error} ({report.succeeded:,} records confirmed "
            "before the failure stay confirmed; the next run sends the rest)"
        ) from exc
    finally:
        client.close()
        report.seconds = time.perf_counter() - clock
        with writing:
            _audit(con, report, started, dry_run, force)
    return report


@dataclass
class DestinationResult:
    """What became of one destination in sync_concurrently."""

    destination: Destination
    report: SyncReport | None = None
    error: str | None = None  # the failure, naming the destination
    not_configured: bool = False  # its environment is not set at all: skipped


def sync_concurrently(
    con,
    destinations: list[Destination],
    environ: Mapping[str, str],
    *,
    dry_run: bool = False,
    force: bool = False,
) -> list[DestinationResult]:
    """Sync every destination at once, in the order given back.

    The destinations are independent and each is paced by its own rate limit, so each runs
    in its own thread on its own cursor of ``con``; their warehouse writes take one lock, one
    write transaction at a time. A destination whose environment (``environ``) is not set at
    all is skipped as not configured; one that fails (partial settings, the guardrail, a
    delivery failure) does not stop the others.
    """
    ensure_tables(con)
    lock = threading.Lock()

    def one(destination: Destination) -> DestinationResult:
        try:
            if not destination.check_configured(environ):
                return DestinationResult(destination, not_configured=True)
            with con.cursor() as cursor:
                report = sync_destination(cursor, destination, environ=environ, dry_run=dry_run,
                                          force=force, write_lock=lock)  # fmt: skip
            return DestinationResult(destination, report=report)
        except (DestinationError, GuardrailError, SyncError) as exc:
            return DestinationResult(destination, error=str(exc))

    with ThreadPoolExecutor(max_workers=max(len(destinations), 1)) as pool:
        return list(pool.map(one, destinations))
