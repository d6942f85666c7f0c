"""Erasure that erases (segmint/privacy.py), on a copy of a built warehouse and a real CRM
emulator on 127.0.0.1: after an erasure, a search of every table, view, text column, export
file and CRM finds nothing of the person."""

import json
import os
import re
import shutil

import duckdb
import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from segmint.cli import app
from segmint.config import DEV_PII_SALT
from segmint.generate import PLACEHOLDER_PHONES
from segmint.load import load
from segmint.privacy import audit, erase, hash_identifier, normalize_email
from segmint.sync.config import load_destinations
from segmint.sync.engine import sync_destination
from segmint.warehouse import DuckDBWarehouse

SALT = DEV_PII_SALT  # the ci target's salt: what dbt hashed the warehouse with


@pytest.fixture
def con(synced_source, tmp_path):
    warehouse, _ = synced_source
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(warehouse, copy)
    connection = duckdb.connect(str(copy))
    erase(connection, SALT)  # the generator's own requests: each test starts with none
    yield connection
    connection.close()


def destinations(**changes):
    fast = {"requests_per_second": 1000, "timeout_seconds": 2.0, **changes}
    return [d.model_copy(update=fast) for d in load_destinations()]


def person_of(con, customer_id: str) -> dict:
    """The clear emails and phones of a customer's records, read from staging."""
    emails, phones = set(), set()
    for source_table, record_id in con.execute(
        "select source_table, source_record_id from marts.dim_customer_identities "
        "where customer_id = ?",
        [customer_id],
    ).fetchall():
        if source_table == "crm_contacts":
            email, phone = con.execute(
                "select email, phone from staging.stg_crm__contacts where contact_id = ?",
                [record_id],
            ).fetchall()[0]
            emails.add(email)
            phones.add(phone)
        elif source_table == "orders":
            emails |= {
                r[0]
                for r in con.execute(
                    "select email from staging.stg_shop__orders where order_id = ?", [record_id]
                ).fetchall()
            }
    placeholders = {re.sub(r"[^0-9]", "", p)[-9:] for p in PLACEHOLDER_PHONES}
    digits = {re.sub(r"[^0-9]", "", p)[-9:] for p in phones if p}
    return {"emails": sorted(e for e in emails if e), "phones": sorted(digits - placeholders)}


def request_erasure(con, request_id: str, email: str) -> None:
    con.execute(
        "insert into raw.erasure_requests (request_id, email, requested_at, _load_id, "
        "_source_file, _source_row, _loaded_at) values (?, ?, '2026-11-30T10:00:00Z', 'test', "
        "'erasure_requests.csv', 1, now())",
        [request_id, email],
    )


def traces(con, person: dict, folders=()) -> list:
    found = []
    for email in person["emails"]:
        needles = {"email": email, "email hash": hash_identifier(SALT, email)}
        found += audit(con, needles, files=folders)
    for digits in person["phones"]:
        found += audit(con, {}, phone_digits=digits, files=folders)
    return found


def test_an_erased_value_leaves_the_file_when_it_is_rewritten(synced_source, tmp_path):
    """DuckDB keeps a deleted row's values in the file (a delete only marks the row), so an
    erasure rewrites the file with its live rows alone. Stored uncompressed here, so that a
    byte search of the file can see the values at all."""
    warehouse, _ = synced_source
    copy = DuckDBWarehouse(tmp_path / "w.duckdb")
    shutil.copyfile(warehouse, copy.path)
    uncompressed = {"force_compression": "uncompressed"}
    copy.compact(uncompressed)
    with copy.connect() as connection:
        erase(connection, SALT)
        relations = connection.execute(
            "select count(*) from duckdb_tables() where database_name = current_database()"
        ).fetchall()
        (erased, kept), *_ = connection.execute(
            "select min(email), max(email) from raw.crm_contacts where email like '%@%.%'"
        ).fetchall()
        request_erasure(connection, "era_file_1", erased)
        report = erase(connection, SALT)
    assert report.customers == 1 and report.total_rows > 0
    data = copy.path.read_bytes()
    # The rows are gone from every table, but their bytes are still in the file.
    assert erased.encode() in data and kept.encode() in data

    compaction = copy.compact(uncompressed)

    data = copy.path.read_bytes()
    assert erased.encode() not in data
    assert kept.encode() in data  # the search still sees live values
    assert compaction.bytes_after <= compaction.bytes_before
    with copy.connect(read_only=True) as connection:
        assert (
            connection.execute(
                "select count(*) from duckdb_tables() where database_name = current_database()"
            ).fetchall()
            == relations
        )
        assert audit(connection, {"email": erased}) == []
        assert audit(connection, {"email": kept}) != []
        # dbt's views still resolve in the rewritten file.
        assert connection.execute("select count(*) from staging.stg_crm__contacts").fetchone()[0]


def test_privacy_erase_command_rewrites_the_warehouse_file(synced_source, tmp_path, monkeypatch):
    warehouse, _ = synced_source
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(warehouse, copy)
    with duckdb.connect(str(copy)) as connection:
        erase(connection, SALT)
        (email,) = connection.execute(
            "select min(email) from raw.crm_contacts where email like '%@%.%'"
        ).fetchone()
        request_erasure(connection, "era_cli_1", email)
    before = copy.stat().st_ino
    for var in (
        "SEGMINT_HUBSPOT_URL",
        "SEGMINT_SALESFORCE_URL",
        "SEGMINT_WEBHOOK_URL",
        "SEGMINT_WEBHOOK_SECRET",
        "SEGMINT_HUBSPOT_TOKEN",
        "SEGMINT_SALESFORCE_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)  # fmt: skip
    env = {"SEGMINT_DUCKDB_PATH": copy, "SEGMINT_DBT_TARGET": "ci", "SEGMINT_PII_SALT": SALT,
           "SEGMINT_EXPORT_DIR": tmp_path / "exports", "SEGMINT_DATA_DOCS_DIR": tmp_path / "docs",
           "SEGMINT_BI_DUCKDB_PATH": tmp_path / "bi" / "w.duckdb"}  # fmt: skip
    for var, value in env.items():
        monkeypatch.setenv(var, str(value))
    result = CliRunner().invoke(app, ["privacy", "erase"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "1 request(s) carried out" in result.output
    assert "warehouse file rewritten without the deleted rows" in result.output
    assert copy.stat().st_ino != before  # a new file took the old one's place
    with duckdb.connect(str(copy), read_only=True) as connection:
        assert audit(connection, {"email": email}) == []
        assert connection.execute("select count(*) from marts.dim_customers").fetchone()[0]


def test_the_hash_matches_what_dbt_computed(con):
    """segmint.privacy hashes as macros/hash_pii.sql over normalize_email does in dbt."""
    rows = con.execute(
        "select email, email_hash from staging.stg_crm__contacts where email is not null limit 50"
    ).fetchall()
    assert rows
    for email, digest in rows:
        assert hash_identifier(SALT, normalize_email(email)) == digest


def test_an_erasure_reaches_every_table_file_and_crm_and_no_guardrail_holds_it(con, crm, tmp_path):
    ds = destinations(max_change_share=0.01)  # a guardrail that any erasure would trip
    for d in ds:
        sync_destination(con, d, environ=os.environ)
    # A customer synced by CRM id to HubSpot and Salesforce, and by email to the export.
    customer, hubspot_id, salesforce_id = con.execute(
        """
        select customer_id,
               max(case when destination = 'hubspot' then record_key end),
               max(case when destination = 'salesforce' then record_key end)
        from sync.synced_records group by customer_id
        having count(distinct destination) >= 3
           and max(case when destination = 'hubspot' then key_type end) = 'crm_id'
           and max(case when destination = 'salesforce' then key_type end) = 'crm_id'
           and max(case when destination = 'file_export' then key_type end) = 'email'
        order by customer_id limit 1
        """
    ).fetchall()[0]
    person = person_of(con, customer)
    assert person["emails"] and person["phones"]
    exports = tmp_path / "exports"
    assert traces(con, person, [exports]), "the person is in the warehouse and the export"

    request_erasure(con, "era_test_1", person["emails"][0].upper() + "  ")
    report = erase(con, SALT, folders=[exports / "file_export"], destinations=ds,
                   environ=crm.env)  # fmt: skip

    assert report.requests == ["era_test_1"] and report.customers >= 1
    assert traces(con, person, [exports]) == []
    assert customer not in {r[0] for r in con.execute(
        "select customer_id from marts.dim_customers").fetchall()}  # fmt: skip
    # HubSpot: GDPR-deleted (gone, not archived); Salesforce: hard-deleted; webhook: a signed
    # erase event (the emulator checks the signature); file: a deletion manifest.
    hubspot = httpx.get(f"{crm.url}/_emulator/contacts?crm=hubspot").json()
    assert hubspot_id not in {c["id"] for c in hubspot}
    assert not {(c["properties"].get("email") or "").lower() for c in hubspot} & set(
        person["emails"]
    )
    assert salesforce_id in crm.state.salesforce_hard_deleted  # Bulk API hardDelete
    assert salesforce_id not in crm.state.salesforce
    manifest = (exports / "file_export" / "erasures.jsonl").read_text().splitlines()
    assert customer in {json.loads(line)["customer_id"] for line in manifest}
    log = con.execute(
        "select target, action from privacy.erasure_log where step = 'destination'"
    ).fetchall()
    assert ("hubspot", "deleted") in log and ("salesforce", "deleted") in log
    assert ("file_export", "files rewritten") in log
    # The evidence holds no personal data, and a sync afterwards is not held back.
    assert audit(con, {"email": person["emails"][0]}) == []
    for d in ds:
        assert sync_destination(con, d, environ=os.environ).status == "ok"
    # Nothing left to do: a second erasure removes nothing.
    again = erase(con, SALT, destinations=ds, environ=crm.env)
    assert again.requests == [] and again.total_rows == 0


def test_a_shared_mailbox_email_is_erased_too(con):
    """An email the graph excludes as shared (a blocklist pattern, the cardinality guard)
    still names the records that carry it. This seed has no shared mailbox, so one email
    of the graph is marked excluded, as the blocklist would have done."""
    digest = con.execute(
        "select identifier_value from marts.dim_customer_identities "
        "where identifier_type = 'email' and customer_id is not null "
        "order by identifier_value limit 1"
    ).fetchall()[0][0]
    con.execute(
        "update marts.dim_customer_identities set is_excluded = true, "
        "exclusion_reason = 'blocklist: shared mailbox' where identifier_value = ?",
        [digest],
    )
    email = con.execute(
        "select email from staging.stg_crm__contacts where email_hash = ? "
        "union select email from staging.stg_shop__orders where email_hash = ? limit 1",
        [digest, digest],
    ).fetchall()[0][0]
    customers = {
        r[0]
        for r in con.execute(
            "select customer_id from marts.dim_customer_identities where identifier_value = ?",
            [digest],
        ).fetchall()
    }
    request_erasure(con, "era_shared", email)
    report = erase(con, SALT)
    assert report.customers == len(customers) >= 1
    assert audit(con, {"email": email, "email hash": digest}) == []


def test_a_person_loaded_again_from_an_old_file_is_not_loaded(con, tmp_path):
    """An erased person's rows arriving again (another export of the old CRM, their cookie
    browsing on) are held back by the loader: never written to the file, so nothing has to
    be deleted or rewritten later. Other people's rows in the same files load."""
    path = tmp_path / "w.duckdb"  # the copy the con fixture opened
    email, contact, customer = con.execute(
        "select c.email, c.source_contact_id, i.customer_id "
        "from staging.stg_crm__contacts as c "
        "join marts.dim_customer_identities as i "
        "  on i.source_table = 'crm_contacts' and i.source_record_id = c.contact_id "
        "where c.email is not null and i.customer_id in ("
        "  select customer_id from marts.dim_customer_identities "
        "  where identifier_type = 'device' and customer_id is not null) "
        "order by c.contact_id limit 1"
    ).fetchall()[0]
    device = con.execute(
        "select identifier_value from marts.dim_customer_identities "
        "where customer_id = ? and identifier_type = 'device' order by 1 limit 1",
        [customer],
    ).fetchall()[0][0]
    contacts = con.execute(
        "select * exclude (_load_id, _source_file, _source_row, _loaded_at) "
        "from raw.crm_contacts where trim(contact_id) = ?",
        [contact],
    ).df()
    other = con.execute(
        "select * exclude (_load_id, _source_file, _source_row, _loaded_at) "
        "from raw.crm_contacts where email is not null and lower(trim(email)) <> ? limit 3",
        [email],
    ).df()
    events = con.execute(
        "select * exclude (_load_id, _source_file, _source_row, _loaded_at) "
        "from raw.web_events where trim(anonymous_id) = ? limit 5",
        [device],
    ).df()
    assert len(contacts) and len(events)
    request_erasure(con, "era_reload", email)
    erase(con, SALT)
    assert audit(con, {"email": email}) == []
    assert (
        con.execute(
            "select count(*) from raw.web_events where trim(anonymous_id) = ?", [device]
        ).fetchall()[0][0]
        == 0
    )
    # The same rows arrive again in new landing files, beside other people's; the device's
    # events come without the email (the cookie of someone browsing on, logged out).
    landing = tmp_path / "landing"
    landing.mkdir()
    contacts = contacts.assign(email=contacts["email"].str.upper() + "  ")
    contacts_and_others = pd.concat([contacts, other], ignore_index=True)
    contacts_and_others.to_csv(landing / "crm_contacts_2026-12-01.csv", index=False)
    events.assign(email=None).to_csv(landing / "web_events_2026-12-01.csv", index=False)
    request = [{"request_id": "era_again", "email": email,
                "requested_at": "2026-12-01T09:00:00Z"}]  # fmt: skip
    (landing / "erasure_requests_2026-12-01.jsonl").write_text(json.dumps(request[0]) + "\n")
    con.close()
    report = load(landing, path)
    by_table = {f.table: f for f in report.files}
    assert by_table["crm_contacts"].rows_suppressed == len(contacts)
    assert by_table["crm_contacts"].rows_loaded == len(other)
    assert by_table["web_events"].rows_suppressed == len(events)
    assert by_table["web_events"].rows_loaded == 0
    # A request for an email erased before is a request still: loaded, carried out, logged.
    assert by_table["erasure_requests"].rows_loaded == 1
    with duckdb.connect(str(path)) as reopened:
        # Only the new request holds the email, until it is carried out.
        assert {t.where.split(".")[1] for t in audit(reopened, {"email": email})} == {
            "erasure_requests",
            "stg_privacy__erasure_requests",
        }
        assert (
            reopened.execute(
                "select count(*) from raw.web_events where trim(anonymous_id) = ?", [device]
            ).fetchall()[0][0]
            == 0
        )
        recorded = reopened.execute(
            "select source_table, rows_read, rows_loaded, rows_quarantined, rows_suppressed "
            "from raw.loaded_files where file_path like '%2026-12-01%' order by 1"
        ).fetchall()
        for _, read, loaded, quarantined, suppressed in recorded:
            assert read == loaded + quarantined + suppressed
        assert reopened.execute(
            "select target, rows_affected from privacy.erasure_log where step = 'load' order by 1"
        ).fetchall() == [("raw.crm_contacts", len(contacts)), ("raw.web_events", len(events))]
        again = erase(reopened, SALT)
        assert again.requests == ["era_again"]
        assert "raw.crm_contacts" not in again.rows_removed
        assert "raw.web_events" not in again.rows_removed
        assert audit(reopened, {"email": email}) == []


def test_rows_of_an_erased_device_that_reach_raw_are_erased_by_hash(con):
    """Rows written to raw by another way than the loader (Snowflake's path, a manual
    insert) are found by the salted hash of their device alone, before any graph has
    placed them."""
    customer, device = con.execute(
        "select customer_id, identifier_value from marts.dim_customer_identities "
        "where identifier_type = 'device' and customer_id is not null "
        "and customer_id in (select customer_id from marts.dim_customer_identities "
        "                    where identifier_type = 'email') "
        "order by 1, 2 limit 1"
    ).fetchall()[0]
    email = con.execute(
        "select c.email from marts.dim_customer_identities as i "
        "join staging.stg_crm__contacts as c on i.source_table = 'crm_contacts' "
        "and i.source_record_id = c.contact_id "
        "where i.customer_id = ? and c.email is not null limit 1",
        [customer],
    ).fetchall()
    assert email
    events = con.execute(
        "select * from raw.web_events where trim(anonymous_id) = ? limit 3", [device]
    ).df()
    request_erasure(con, "era_device", email[0][0])
    erase(con, SALT)
    assert len(events)
    con.register("_events", events.assign(email=None))
    con.execute("insert into raw.web_events select * from _events")
    again = erase(con, SALT, graph_is_current=False)
    assert again.rows_removed.get("raw.web_events") == len(events)
    assert (
        con.execute(
            "select count(*) from raw.web_events where trim(anonymous_id) = ?", [device]
        ).fetchall()[0][0]
        == 0
    )


def test_a_request_the_graph_has_not_placed_waits_for_the_identity_step(con):
    """Before the run's identity step, deleting a new person's rows would cut the links to
    their other records: the request is deferred, then carried out once the graph is built."""
    email = "brand.new.person@example.org"
    request_erasure(con, "era_new", email)
    early = erase(con, SALT, graph_is_current=False)
    assert early.requests == []
    assert con.execute("select count(*) from raw.erasure_requests").fetchall()[0][0] >= 1
    later = erase(con, SALT, graph_is_current=True)
    assert later.requests == ["era_new"]
    assert (
        con.execute(
            "select count(*) from raw.erasure_requests where request_id = 'era_new'"
        ).fetchall()[0][0]
        == 0
    )


def test_both_ways_of_finding_values_inside_text_remove_the_same_rows(con, tmp_path, monkeypatch):
    """A small batch is found with one regular expression, a large one by joining tokens
    (segmint.privacy.REGEX_MAX_VALUES): on the same warehouse and requests, the same rows go."""
    import segmint.privacy as privacy

    emails = [
        r[0]
        for r in con.execute(
            "select min(email) from staging.stg_crm__contacts where email is not null "
            "group by email_hash order by 1 limit 5"
        ).fetchall()
    ]
    for n, email in enumerate(emails):
        request_erasure(con, f"era_paths_{n}", email)
    con.execute("checkpoint")
    copy = tmp_path / "tokens.duckdb"
    shutil.copyfile(tmp_path / "w.duckdb", copy)
    by_regex = erase(con, SALT)
    monkeypatch.setattr(privacy, "REGEX_MAX_VALUES", 0)
    with duckdb.connect(str(copy)) as other:
        by_tokens = erase(other, SALT)
    assert by_regex.total_rows > 100
    assert by_tokens.rows_removed == by_regex.rows_removed


def test_a_value_inside_text_is_found_as_a_whole_token_only(con):
    """An email in a sentence, a hash inside a composite id, a CRM id in a record key are
    found; a longer value that merely contains one (another person's email) is not."""
    import segmint.privacy as privacy

    con.execute("create schema if not exists scratch")
    con.execute("create table scratch.notes (note varchar)")
    texts = [
        "Please write to Jo.Doe+news@Example.com. Thanks",  # found, trailing full stop
        '{"email":"jo.doe+news@example.com","tags":"vip"}',  # found, inside JSON
        "rec:crm_contacts|salesforce:0036abcdef12345",  # found: the CRM id
        "ajo.doe+news@example.com",  # another address that contains it: kept
        "jo.doe+news@example.community",  # kept
    ]
    con.executemany("insert into scratch.notes values (?)", [[t] for t in texts])
    person = privacy.Person(clear={"jo.doe+news@example.com"})
    person.key_set("crm_source_contact").add("0036abcdef12345")
    for limit in (privacy.REGEX_MAX_VALUES, 0):  # both search paths
        removed: dict[str, int] = {}
        privacy._register_person(con, person)
        con.execute("begin transaction")
        try:
            privacy.REGEX_MAX_VALUES, saved = limit, privacy.REGEX_MAX_VALUES
            privacy._erase_downstream(con, person, removed)
            left = [r[0] for r in con.execute("select note from scratch.notes").fetchall()]
        finally:
            privacy.REGEX_MAX_VALUES = saved
            con.execute("rollback")
            privacy._unregister_person(con)
        assert removed["scratch.notes"] == 3
        assert sorted(left) == sorted(texts[3:])


def test_the_salt_is_stored_once_and_a_different_one_is_refused(con):
    from segmint.config import ConfigError
    from segmint.privacy import salt_fingerprint, store_salt

    stored = con.execute("select salt, fingerprint, is_development from privacy.pii_salt")
    assert stored.fetchall() == [(SALT, salt_fingerprint(SALT), True)]
    store_salt(con, SALT)  # the same salt again: nothing changes
    assert con.execute("select count(*) from privacy.pii_salt").fetchall() == [(1,)]
    with pytest.raises(ConfigError, match="differs from the salt"):
        store_salt(con, "another-salt")
    with pytest.raises(ConfigError, match="differs from the salt"):
        erase(con, "another-salt")
