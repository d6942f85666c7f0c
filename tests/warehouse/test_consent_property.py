"""Consent by construction, tested with random consent histories (hypothesis).

Each example replaces the warehouse's consent events and erasure requests with a random
history over a few real customers' emails, rebuilds dim_customers and crm_segment_tags with
dbt, and syncs the file destination. Customers have up to two addresses each. No customer
whose latest consent event for a destination's purpose (over all their addresses) is not a
grant, no address whose own latest event is not a grant, and no erased customer may be in
the desired tags or receive a tag; every consented customer with a granted address of their
own is exported.
"""

import json
import os
from datetime import datetime, timedelta

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmint.reference import consent_purposes
from segmint.sync.config import load_destinations
from segmint.sync.engine import sync_destination
from tests.warehouse.helpers import built_warehouse, dbt

PURPOSES = list(consent_purposes())  # seeds/consent_purposes.csv
EMAILS = 10
START = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("consent")
    path, _ = built_warehouse(root, 300, seed=13)
    with duckdb.connect(str(path), read_only=True) as con:
        # Emails whose hash belongs to exactly one customer, two per customer at most.
        candidates = con.execute(f"""
            with owners as (
                select identifier_value as email_hash, min(customer_id) as customer_id
                from marts.dim_customer_identities
                where identifier_type = 'email' and not is_excluded
                group by 1 having count(distinct customer_id) = 1
            ),
            plain as (
                select email_hash, min(email) as email from staging.stg_crm__contacts
                where email is not null group by 1
            ),
            ranked as (
                select plain.email, owners.customer_id,
                       row_number() over (partition by owners.customer_id order by plain.email) as n
                from owners join plain using (email_hash)
            )
            select email, customer_id from ranked where n <= 2
            order by customer_id, email limit {EMAILS}
        """).fetchall()
    return root, path, candidates


events = st.lists(
    st.tuples(
        st.integers(0, EMAILS - 1),  # which email
        st.sampled_from(PURPOSES),
        st.sampled_from(["granted", "revoked"]),
        st.integers(0, 500),  # minutes after START (ties are broken by event id)
    ),
    max_size=30,
)
erasures = st.sets(st.integers(0, EMAILS - 1), max_size=3)


def _replace_history(con, candidates, history, erased) -> None:
    con.execute("delete from raw.consent_events")
    con.execute("delete from raw.erasure_requests")
    for i, (e, purpose, status, minute) in enumerate(history):
        con.execute(
            "insert into raw.consent_events values (?, ?, ?, ?, ?, 'test', 'l', 'f', ?, now())",
            [f"cns_{i:04d}", candidates[e][0], purpose, status,
             (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ"), i],
        )  # fmt: skip
    for j, e in enumerate(sorted(erased)):
        con.execute(
            "insert into raw.erasure_requests values (?, ?, '2026-02-01T00:00:00Z', 'l', 'f', ?, "
            "now())",
            [f"era_{j:04d}", candidates[e][0], j],
        )


def _oracle(candidates, history, erased):
    """Per address and per customer, the purposes whose latest event is a grant; erased
    customers. A customer's latest event is over all their addresses."""
    by_email: dict[tuple[str, str], tuple[int, int, str]] = {}
    by_customer: dict[tuple[str, str], tuple[int, int, str]] = {}
    for i, (e, purpose, status, minute) in enumerate(history):
        email, customer = candidates[e]
        for latest, key in ((by_email, (email, purpose)), (by_customer, (customer, purpose))):
            if key not in latest or (minute, i) > latest[key][:2]:
                latest[key] = (minute, i, status)

    def granted(latest) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for (who, purpose), (_, _, status) in latest.items():
            if status == "granted":
                out.setdefault(who, set()).add(purpose)
        return out

    return granted(by_email), granted(by_customer), {candidates[e][1] for e in erased}


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=events, erased=erasures)
def test_no_unconsented_or_erased_customer_reaches_a_destination(
    warehouse, monkeypatch, history, erased
):
    root, path, candidates = warehouse
    with duckdb.connect(str(path)) as con:
        _replace_history(con, candidates, history, erased)
    result = dbt(path, root / "target", "run", "-s", "dim_customers", "crm_segment_tags")
    assert result.returncode == 0, result.stdout[-3000:]
    by_email, granted, erased_customers = _oracle(candidates, history, erased)
    purposes = {d.name: d.consent_purpose for d in load_destinations()}
    with duckdb.connect(str(path)) as con:
        rows = con.execute(
            "select destination, customer_id, email from activation.crm_segment_tags"
        ).fetchall()
        for destination, customer, email in rows:
            purpose = purposes[destination]
            assert customer not in erased_customers
            assert purpose in granted.get(customer, set()), (destination, customer)
            # Consent per address: the address sent has its own latest grant.
            assert purpose in by_email.get(email, set()), (destination, customer, email)
        # Completeness: every consented, not erased candidate with a granted address of
        # their own is exported, by that address.
        exported = {c for d, c, _ in rows if d == "file_export"}
        own = {}
        for email, customer in candidates:
            own.setdefault(customer, set()).add(email)
        expected = {
            c
            for c, p in granted.items()
            if "email_marketing" in p
            and c not in erased_customers
            and any("email_marketing" in by_email.get(e, set()) for e in own[c])
        }
        assert exported == expected
        # What the sync sends: tags only for those rows; others lose every segmint tag.
        monkeypatch.setenv("SEGMINT_EXPORT_DIR", str(root / "exports"))
        (file_export,) = [d for d in load_destinations() if d.name == "file_export"]
        report = sync_destination(con, file_export, force=True, environ=os.environ)
    export = root / "exports" / "file_export" / f"{report.run_id}.jsonl"
    lines = export.read_text().splitlines() if report.plan.changes else []
    assert len(lines) == len(report.plan.changes)
    for change in map(json.loads, lines):
        if change["tags"]:
            assert change["customer_id"] in expected
        else:
            assert change["action"] in ("remove", "erase")
