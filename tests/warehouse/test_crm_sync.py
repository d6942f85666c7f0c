"""The CRM sync against the local emulator (a real HTTP server on 127.0.0.1).

A small generated warehouse is built once; every test syncs a copy of it. Each fault kind
must end at exactly the desired CRM state, with no duplicate contacts, and a re-run with
nothing changed must make no API call.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from segmint.cli import app
from segmint.sync.config import DestinationError, load_destinations
from segmint.sync.emulator import CrmEmulator
from segmint.sync.engine import GuardrailError, SyncError, sync_concurrently, sync_destination

PREFIX = "segmint_"


@pytest.fixture
def source(synced_source):
    return synced_source


@pytest.fixture
def con(source, tmp_path):
    warehouse, _ = source
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(warehouse, copy)
    connection = duckdb.connect(str(copy))
    yield connection
    connection.close()


def destination(name, **changes):
    fast = {"requests_per_second": 1000, "timeout_seconds": 2.0, **changes}
    (d,) = [d for d in load_destinations() if d.name == name]
    return d.model_copy(update=fast)


def desired(con, name) -> dict[str, set[str]]:
    rows = con.execute(
        "select record_key, tags from activation.crm_segment_tags where destination = ?", [name]
    ).fetchall()
    return {key: set(tags.split(";")) for key, tags in rows}


def hubspot_tags(crm) -> tuple[dict[str, set[str]], dict[str, set[str]], list[str]]:
    """segmint tags by contact id and by email, and every email (to find duplicates)."""
    by_id, by_email, emails = {}, {}, []
    for contact in httpx.get(f"{crm.url}/_emulator/contacts?crm=hubspot").json():
        props = contact["properties"]
        tags = {t for t in (props.get("segmint_segments") or "").split(";") if t}
        by_id[contact["id"]] = tags
        email = (props.get("email") or "").strip().lower()
        if email:
            by_email[email] = tags
            emails.append(email)
    return by_id, by_email, emails


def assert_hubspot_matches(con, crm):
    by_id, by_email, emails = hubspot_tags(crm)
    want = desired(con, "hubspot")
    keys = dict(
        con.execute(
            "select record_key, key_type from activation.crm_segment_tags "
            "where destination = 'hubspot'"
        ).fetchall()
    )
    for key, tags in want.items():
        have = by_id[key] if keys[key] == "crm_id" else by_email[key.lower()]
        assert {t for t in have if t.startswith(PREFIX)} == tags, key
    desired_ids = {k for k, t in keys.items() if t == "crm_id"}
    desired_emails = {k.lower() for k, t in keys.items() if t == "email"}
    # Nobody outside the desired set carries a segmint tag.
    for contact_id, tags in by_id.items():
        segmint = {t for t in tags if t.startswith(PREFIX)}
        if segmint:
            email = next((e for e, t in by_email.items() if t is tags), None)
            assert contact_id in desired_ids or email in desired_emails, contact_id
    assert len(emails) == len(set(emails)), "duplicate contacts"


def salesforce_tags(crm) -> dict[str, list[str]]:
    return {
        c["Id"]: [t for t in (c.get("Segmint_Segments__c") or "").split(";") if t]
        for c in httpx.get(f"{crm.url}/_emulator/contacts?crm=salesforce").json()
    }


def requests(crm) -> list[dict]:
    return httpx.get(f"{crm.url}/_emulator/requests").json()


def test_first_sync_reaches_the_desired_state_and_a_rerun_calls_nothing(con, crm):
    foreign_before = {k for k, t in hubspot_tags(crm)[0].items() if "newsletter_2024" in t}
    for name in ("hubspot", "salesforce", "webhook", "file_export"):
        report = sync_destination(con, destination(name), environ=os.environ)
        assert report.status == "ok" and report.rejected == 0
        assert report.succeeded == len(desired(con, name)) > 0
    assert_hubspot_matches(con, crm)
    # Tags segmint did not write are still there.
    foreign_after = {k for k, t in hubspot_tags(crm)[0].items() if "newsletter_2024" in t}
    assert foreign_after == foreign_before and foreign_before
    sf = salesforce_tags(crm)
    for key, tags in desired(con, "salesforce").items():
        assert {t for t in sf[key] if t.startswith(PREFIX)} == tags
    hook = crm.state.webhook
    assert sum(len(b["records"]) for b in hook) == len(desired(con, "webhook"))
    calls = len(requests(crm))
    for name in ("hubspot", "salesforce", "webhook", "file_export"):
        again = sync_destination(con, destination(name), environ=os.environ)
        assert again.plan.changes == [] and again.stats.api_calls == 0
    assert len(requests(crm)) == calls
    audit = con.execute("select destination, status from sync.sync_runs").fetchall()
    assert len(audit) == 8 and {s for _, s in audit} == {"ok"}


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "429", "count": 3, "retry_after": 0.2},
        {"kind": "500", "count": 2},
        {"kind": "503", "count": 2},
        {"kind": "slow", "count": 2, "delay": 1.5},
        {"kind": "drop", "count": 2},
        {"kind": "drop_after", "count": 2},
    ],
    ids=lambda f: f["kind"],
)
def test_each_fault_kind_ends_at_the_desired_state(con, crm, fault):
    # The faults hit the write calls of the second batch onwards, and the reads too.
    httpx.post(f"{crm.url}/_emulator/faults", json={**fault, "path": "/crm/v3/objects"})
    report = sync_destination(
        con, destination("hubspot", timeout_seconds=1.0, batch_size=50), environ=os.environ
    )
    assert report.status == "ok", report.error
    assert report.stats.retries >= 1
    if fault["kind"] == "429":
        assert report.stats.throttled == 3
    assert_hubspot_matches(con, crm)
    statuses = [r["status"] for r in requests(crm) if r["fault"]]
    assert len(statuses) == fault["count"]


@pytest.mark.parametrize(
    ("name", "path", "reason"),
    [
        ("salesforce", "/services", "FIELD_CUSTOM_VALIDATION_EXCEPTION"),
        ("hubspot", "/crm/v3/objects/contacts/batch/u", "VALIDATION_ERROR"),
    ],
)
def test_partial_failures_are_rejected_with_a_reason_then_retried(con, crm, name, path, reason):
    want = desired(con, name)
    refused = sorted(want)[:3]
    httpx.post(f"{crm.url}/_emulator/faults",
               json={"kind": "partial", "keys": refused, "path": path, "count": 50})  # fmt: skip
    report = sync_destination(con, destination(name), environ=os.environ)
    assert report.status == "partial" and report.rejected == 3
    rejected = con.execute("select record_key, reason from sync.rejected_rows").fetchall()
    assert sorted(k for k, _ in rejected) == refused
    assert all(reason in r for _, r in rejected)
    # The next run sends only the three refused records.
    crm.state.faults.clear()
    again = sync_destination(con, destination(name), environ=os.environ)
    assert len(again.plan.changes) == 3 and again.succeeded == 3
    if name == "hubspot":
        assert_hubspot_matches(con, crm)
    else:
        sf = salesforce_tags(crm)
        assert all({t for t in sf[k] if t.startswith(PREFIX)} == want[k] for k in want)


def test_a_crash_mid_sync_resumes_and_confirmed_records_are_not_sent_again(con, crm):
    d = destination("hubspot", batch_size=20, max_attempts=2)
    # Two batches go through (a read and a write each), then the service is down.
    httpx.post(f"{crm.url}/_emulator/faults", json={"kind": "500", "count": 50, "skip": 4,
                                                   "path": "/crm"})  # fmt: skip
    with pytest.raises(SyncError, match="confirmed before the failure"):
        sync_destination(con, d, environ=os.environ)
    confirmed = con.execute("select count(*) from sync.synced_records").fetchone()[0]
    assert confirmed == 40
    crm.state.faults.clear()
    sent_before = _written_keys(crm)
    resumed = sync_destination(con, d, environ=os.environ)
    assert len(resumed.plan.changes) == len(desired(con, "hubspot")) - confirmed
    assert_hubspot_matches(con, crm)
    sent_after = _written_keys(crm)[len(sent_before) :]
    # Nothing confirmed in the first run was written again.
    synced_first = {r[0] for r in con.execute(
        "select record_key from sync.synced_records where run_id <> ?", [resumed.run_id]
    ).fetchall()}  # fmt: skip
    assert not synced_first & set(sent_after)
    audit = con.execute("select status from sync.sync_runs order by started_at").fetchall()
    assert [s for (s,) in audit] == ["failed", "ok"]


def _written_keys(crm) -> list[str]:
    return [k for r in crm.state.requests for k in r.get("keys", [])]


def test_leaving_a_segment_removes_the_tag_and_erasure_removes_all(con, crm):
    d = destination("hubspot", delete_erased=False)  # untag only (the default deletes)
    sync_destination(con, d, environ=os.environ)
    key, tags = next(
        (k, t) for k, t in con.execute(
            "select record_key, tags from activation.crm_segment_tags "
            "where destination = 'hubspot' and key_type = 'crm_id' and tag_count >= 2"
        ).fetchall()
    )  # fmt: skip
    kept = tags.split(";")[1:]
    con.execute(
        "update activation.crm_segment_tags set tags = ?, tag_count = ?, tag_hash = md5(?) "
        "where destination = 'hubspot' and record_key = ?",
        [";".join(kept), len(kept), ";".join(kept), key],
    )
    erased_key, erased_customer = con.execute(
        "select record_key, customer_id from activation.crm_segment_tags "
        "where destination = 'hubspot' and key_type = 'crm_id' and record_key <> ? limit 1", [key]
    ).fetchone()  # fmt: skip
    con.execute("update marts.dim_customers set is_erased = true where customer_id = ?",
                [erased_customer])  # fmt: skip
    con.execute("delete from activation.crm_segment_tags where customer_id = ?", [erased_customer])
    report = sync_destination(con, d, environ=os.environ)
    assert report.plan.summary()["updates"] == 1 and report.plan.summary()["erasures"] == 1
    by_id = hubspot_tags(crm)[0]
    assert {t for t in by_id[key] if t.startswith(PREFIX)} == set(kept)
    assert not {t for t in by_id[erased_key] if t.startswith(PREFIX)}
    assert con.execute("select count(*) from sync.synced_records where record_key = ?",
                       [erased_key]).fetchone()[0] == 0  # fmt: skip


def _erase_one(con, d) -> str:
    sync_destination(con, d, environ=os.environ)
    key, customer = con.execute(
        "select record_key, customer_id from activation.crm_segment_tags "
        "where destination = 'salesforce' order by record_key limit 1"
    ).fetchone()
    con.execute("update marts.dim_customers set is_erased = true where customer_id = ?", [customer])
    con.execute("delete from activation.crm_segment_tags where customer_id = ?", [customer])
    return key


def test_erased_contacts_are_deleted_for_good_by_default(con, crm):
    """The shipped Salesforce destination hard-deletes (Bulk API 2.0): nothing waits in the
    Recycle Bin for 15 days."""
    d = destination("salesforce")
    assert d.hard_delete
    key = _erase_one(con, d)
    report = sync_destination(con, d, environ=os.environ)
    assert report.plan.count("erase") == 1 and report.succeeded == 1
    assert key not in crm.state.salesforce and key in crm.state.salesforce_hard_deleted
    paths = [(r["method"], r["path"].split("/jobs/ingest")[-1]) for r in crm.state.requests
             if "/jobs/ingest" in r["path"]]  # fmt: skip
    job = next(path for method, path in paths if method == "PATCH")
    assert paths[0] == ("POST", "") and job.startswith("/750")
    assert ("PUT", f"{job}/batches") in paths
    assert ("PATCH", job) in paths and ("GET", f"{job}/successfulResults/") in paths
    assert sum(1 for p in paths if p == ("GET", job)) >= 2  # polled until JobComplete


def test_without_hard_delete_erased_contacts_go_to_the_recycle_bin(con, crm):
    d = destination("salesforce", hard_delete=False)
    key = _erase_one(con, d)
    report = sync_destination(con, d, environ=os.environ)
    assert report.succeeded == 1
    assert crm.state.salesforce[key]["IsDeleted"] is True
    assert key not in crm.state.salesforce_hard_deleted


def test_a_hard_delete_refused_for_want_of_permission_is_kept_and_retried(con, crm):
    d = destination("salesforce")
    key = _erase_one(con, d)
    crm.state.hard_delete_permission = False
    report = sync_destination(con, d, environ=os.environ)
    assert report.plan.count("erase") == 1 and report.rejected == 1 and report.succeeded == 0
    assert key in crm.state.salesforce and not crm.state.salesforce[key].get("IsDeleted")
    (reason,) = con.execute(
        "select reason from sync.rejected_rows where record_key = ? and action = 'erase'", [key]
    ).fetchone()
    assert "Bulk API Hard Delete" in reason
    # Granted, the next sync deletes it.
    crm.state.hard_delete_permission = True
    again = sync_destination(con, d, environ=os.environ)
    assert again.plan.count("erase") == 1 and again.succeeded == 1
    assert key in crm.state.salesforce_hard_deleted


def test_the_guardrail_stops_a_large_change_unless_forced(con, crm):
    d = destination("hubspot", max_change_share=0.2)
    sync_destination(con, d, environ=os.environ)
    con.execute("update activation.crm_segment_tags set tags = 'segmint_test', tag_hash = 'x' "
                "where destination = 'hubspot'")  # fmt: skip
    calls = len(requests(crm))
    with pytest.raises(GuardrailError, match="above max_change_share 20%"):
        sync_destination(con, d, environ=os.environ)
    assert len(requests(crm)) == calls
    dry = sync_destination(con, d, dry_run=True, force=True, environ=os.environ)
    assert dry.status == "dry_run" and len(requests(crm)) == calls
    forced = sync_destination(con, d, force=True, environ=os.environ)
    assert forced.status == "ok"
    assert_hubspot_matches(con, crm)
    statuses = [s for (s,) in con.execute("select status from sync.sync_runs order by started_at")
                .fetchall()]  # fmt: skip
    assert statuses == ["ok", "aborted", "dry_run", "ok"]


def test_prediction_properties_refresh_without_tripping_the_guardrail_and_clear_on_removal(
    con, crm
):
    """Scores move every day: an update of the properties alone is sent, never counted as
    a mass change; a record segmint takes off loses its properties with its tags."""
    d = destination("hubspot", max_change_share=0.2, delete_erased=False)
    assert d.properties == {"segmint_churn_probability": "churn_probability",
                            "segmint_predicted_clv": "predicted_clv"}  # fmt: skip
    sync_destination(con, d, environ=os.environ)
    rows = con.execute("select record_key, key_type from activation.crm_segment_tags "
                       "where destination = 'hubspot'").fetchall()  # fmt: skip
    con.execute(
        "update activation.crm_segment_tags set properties = "
        '\'{"segmint_churn_probability":0.87,"segmint_predicted_clv":123.45}\', '
        "tag_hash = tag_hash || 'p' where destination = 'hubspot'"
    )
    report = sync_destination(
        con, d, environ=os.environ
    )  # every record changes, the guardrail holds its fire
    assert report.status == "ok" and report.plan.count("update") == len(rows)
    assert report.plan.change_share == 0 and report.plan.tags_added == 0

    def contact(key, key_type):
        for c in httpx.get(f"{crm.url}/_emulator/contacts?crm=hubspot").json():
            if (
                (c["id"] == key)
                if key_type == "crm_id"
                else ((c["properties"].get("email") or "").lower() == key.lower())
            ):
                return c["properties"]
        raise AssertionError(key)

    for key, key_type in rows:
        props = contact(key, key_type)
        assert props["segmint_churn_probability"] == "0.87"
        assert props["segmint_predicted_clv"] == "123.45"
    gone, gone_type = rows[0]
    con.execute("delete from activation.crm_segment_tags where record_key = ?", [gone])
    report = sync_destination(con, d, environ=os.environ)
    assert report.plan.count("remove") == 1
    props = contact(gone, gone_type)
    assert props["segmint_churn_probability"] == "" and props["segmint_predicted_clv"] == ""
    assert not {t for t in (props.get("segmint_segments") or "").split(";") if t.startswith(PREFIX)}


def test_the_api_rate_limit_is_honoured(con, crm):
    crm.state.requests_per_second = 4
    report = sync_destination(
        con, destination("salesforce", requests_per_second=8, batch_size=20), environ=os.environ
    )
    assert report.stats.throttled > 0 and report.status == "ok"
    sf = salesforce_tags(crm)
    want = desired(con, "salesforce")
    assert all({t for t in sf[k] if t.startswith(PREFIX)} == want[k] for k in want)


def test_a_bad_webhook_signature_is_rejected_not_retried(con, crm):
    crm.state.webhook_secret = "another-secret"
    report = sync_destination(con, destination("webhook"), environ=os.environ)
    assert report.status == "partial" and report.succeeded == 0
    assert report.stats.retries == 0
    reasons = {r for (r,) in con.execute("select distinct reason from sync.rejected_rows")
               .fetchall()}  # fmt: skip
    assert len(reasons) == 1 and "HTTP 401" in reasons.pop()


def test_a_captured_webhook_request_cannot_be_replayed_or_re_dated(con, crm):
    """The signature covers timestamp, delivery id and body: the receiver refuses a stale or
    re-dated copy and acknowledges a replay without applying it twice."""
    from segmint.sync.clients import webhook_headers

    sync_destination(con, destination("webhook"), environ=os.environ)
    applied = len(crm.state.webhook)
    (sent,) = [r for r in requests(crm) if r["path"] == "/webhook"][:1]
    body = json.dumps({"destination": "webhook", "run_id": "r", "batch": 1, "records": []}).encode()
    url = f"{crm.url}/webhook"
    fresh = webhook_headers("hook-secret", "delivery-1", body)
    assert httpx.post(url, content=body, headers=fresh).json() == {"received": 0}
    replay = httpx.post(url, content=body, headers=fresh)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    stale = webhook_headers("hook-secret", "delivery-2", body, now=time.time() - 3600)
    assert httpx.post(url, content=body, headers=stale).status_code == 401
    redated = {**stale, "X-Segmint-Timestamp": fresh["X-Segmint-Timestamp"]}
    assert httpx.post(url, content=body, headers=redated).status_code == 401
    assert len(crm.state.webhook) == applied + 1 and sent["status"] == 200


def test_destinations_sync_at_once_each_within_its_limit(con, crm, monkeypatch):
    """Independent destinations overlap in time; one that fails does not stop the others."""
    monkeypatch.delenv("SEGMINT_WEBHOOK_SECRET")  # webhook: half configured, so it fails
    paced = {"requests_per_second": 20, "batch_size": 10}
    chosen = [destination("hubspot", **paced), destination("salesforce", **paced),
              destination("webhook"), destination("file_export")]  # fmt: skip
    results = sync_concurrently(con, chosen, os.environ)
    assert [r.destination.name for r in results] == [d.name for d in chosen]
    by_name = {r.destination.name: r for r in results}
    assert by_name["webhook"].report is None
    assert "set SEGMINT_WEBHOOK_SECRET" in by_name["webhook"].error
    for name in ("hubspot", "salesforce", "file_export"):
        report = by_name[name].report
        assert report.status == "ok" and report.succeeded == len(desired(con, name)) > 0
    # Both APIs were called while the other was still being called: at once, not in turn
    # (each sends 10 records a call at 20 calls a second).
    calls = {api: [e["at"] for e in requests(crm) if e["api"] == api]
             for api in ("hubspot", "salesforce")}  # fmt: skip
    assert len(calls["hubspot"]) > 3 and len(calls["salesforce"]) > 3
    assert min(calls["salesforce"]) < max(calls["hubspot"])
    assert min(calls["hubspot"]) < max(calls["salesforce"])
    # The writes, one at a time, all landed: the state holds every confirmed record.
    synced = dict(con.execute(
        "select destination, count(*) from sync.synced_records group by 1").fetchall())  # fmt: skip
    assert synced == {n: len(desired(con, n)) for n in ("hubspot", "salesforce", "file_export")}
    assert_hubspot_matches(con, crm)


def test_missing_environment_and_bad_limits_are_clear_errors(con, monkeypatch):
    monkeypatch.delenv("SEGMINT_HUBSPOT_URL", raising=False)
    with pytest.raises(DestinationError, match="destination hubspot: set SEGMINT_HUBSPOT_URL"):
        sync_destination(con, destination("hubspot"), environ=os.environ)
    with pytest.raises(ValueError, match="batch_size 101 exceeds the hubspot API's 100"):
        type(destination("file_export"))(**{**destination("hubspot").model_dump(),
                                             "batch_size": 101})  # fmt: skip


def test_sync_command_dry_run_then_apply(con, crm, source, tmp_path):
    con.close()
    warehouse = tmp_path / "w.duckdb"
    runner = CliRunner()
    args = ["sync", "--warehouse", str(warehouse), "--destination", "salesforce"]
    dry = runner.invoke(app, [*args, "--dry-run"], terminal_width=200)
    assert dry.exit_code == 0, dry.output
    assert "salesforce create" in dry.output and "dry_run" in dry.output
    assert crm.state.requests == []
    applied = runner.invoke(app, args, terminal_width=200)
    assert applied.exit_code == 0, applied.output
    with duckdb.connect(str(warehouse), read_only=True) as check:
        statuses = [s for (s,) in check.execute(
            "select status from sync.sync_runs order by started_at").fetchall()]  # fmt: skip
        synced = check.execute("select count(*) from sync.synced_records").fetchone()[0]
        wanted = check.execute(
            "select count(*) from activation.crm_segment_tags where destination = 'salesforce'"
        ).fetchone()[0]
    assert statuses == ["dry_run", "ok"] and synced == wanted > 0
    unknown = runner.invoke(app, ["sync", "--warehouse", str(warehouse), "--destination", "x"])
    assert unknown.exit_code == 2 and "unknown destination(s): x" in unknown.output


def test_crm_emulator_command_serves_on_the_given_port(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    segmint = Path(sys.executable).parent / "segmint"
    server = subprocess.Popen(
        [str(segmint), "crm-emulator", "--port", str(port), "--requests-per-second", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/_emulator/requests", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.2)
        body = {"inputs": [{"id": "a@example.com", "idProperty": "email",
                            "properties": {"segmint_segments": "segmint_x"}}]}  # fmt: skip
        headers = {"Authorization": "Bearer t"}
        codes = [
            httpx.post(f"{url}/crm/v3/objects/contacts/batch/upsert", json=body,
                       headers=headers).status_code
            for _ in range(5)
        ]  # fmt: skip
        assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
        unauthenticated = httpx.post(f"{url}/crm/v3/objects/contacts/batch/upsert", json=body)
        assert unauthenticated.status_code in (401, 429)
        contacts = httpx.get(f"{url}/_emulator/contacts?crm=hubspot").json()
        assert [c["properties"]["email"] for c in contacts] == ["a@example.com"]
    finally:
        server.terminate()
        assert server.wait(timeout=10) is not None


def test_a_destination_is_configured_skipped_or_refused_by_its_environment():
    from segmint.sync.config import DestinationError, load_destinations

    hubspot = next(d for d in load_destinations() if d.type == "hubspot")
    url, token = hubspot.required_env
    assert hubspot.check_configured({url: "https://api.example", token: "t"}) is True
    assert hubspot.check_configured({}) is False  # not in use here: skipped
    with pytest.raises(DestinationError, match=f"partly configured: set {token}"):
        hubspot.check_configured({url: "https://api.example"})
    export = next(d for d in load_destinations() if d.type == "file")
    assert export.check_configured({}) is True  # a file export needs no credentials


@pytest.mark.parametrize(
    "retry_after", ["86400", "Wed, 21 Oct 2015 07:28:00 GMT"], ids=["a day", "an HTTP date"]
)
def test_retry_after_in_either_form_is_obeyed_within_its_cap(con, crm, retry_after):
    """RFC 9110 allows seconds or an HTTP date; a day-long wait is cut to the cap."""
    httpx.post(
        f"{crm.url}/_emulator/faults",
        json={"kind": "429", "count": 2, "retry_after": retry_after, "path": "/crm/v3/objects"},
    )
    started = time.monotonic()
    report = sync_destination(
        con, destination("hubspot", max_retry_after_seconds=0.2), environ=os.environ
    )
    assert report.status == "ok" and report.stats.throttled == 2
    assert time.monotonic() - started < 60  # not a day: the cap applied
    assert_hubspot_matches(con, crm)


def test_retry_after_seconds_parses_both_forms_and_caps():
    from datetime import UTC, datetime

    from segmint.sync.clients import retry_after_seconds

    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("2", cap=60, now=now) == 2.0
    assert retry_after_seconds("86400", cap=60, now=now) == 60
    assert retry_after_seconds("Tue, 01 Dec 2026 12:00:05 GMT", cap=60, now=now) == 5.0
    assert retry_after_seconds("Tue, 01 Dec 2026 11:00:00 GMT", cap=60, now=now) == 0.0
    assert retry_after_seconds("soon", cap=60, now=now) is None
    assert retry_after_seconds(None, cap=60, now=now) is None


def test_hubspot_gdpr_delete_removes_the_contact_for_good_and_blocklists_the_email():
    with CrmEmulator() as crm:
        contacts = [
            {"id": "501", "properties": {"email": "Ann@Example.org"}},
            {"id": "502", "properties": {"email": "bo@example.org"}},
        ]
        crm.seed({"hubspot": contacts})
        auth = {"Authorization": "Bearer token"}
        gdpr = f"{crm.url}/crm/v3/objects/contacts/gdpr-delete"
        by_email = {"objectId": "ann@example.org", "idProperty": "email"}
        assert httpx.post(gdpr, json=by_email, headers=auth).status_code == 204
        assert httpx.post(gdpr, json={"objectId": "502"}, headers=auth).status_code == 204
        assert httpx.post(gdpr, json={"objectId": "999"}, headers=auth).status_code == 404
        assert httpx.post(gdpr, json={"objectId": "501"}).status_code == 401
        assert httpx.get(f"{crm.url}/_emulator/contacts?crm=hubspot").json() == []
        upsert = httpx.post(
            f"{crm.url}/crm/v3/objects/contacts/batch/upsert",
            json={"inputs": [{"id": "ann@example.org", "idProperty": "email", "properties": {}}]},
            headers=auth,
        )
        assert upsert.status_code == 207 and "blocklisted" in upsert.text
