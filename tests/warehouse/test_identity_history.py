"""Customer ids across runs: growth keeps ids, a merge is logged, a rebuild gives the same ids."""

from pathlib import Path

import duckdb
import pandas as pd

from segmint.contracts import contracts
from segmint.generate import GeneratorConfig, generate
from segmint.load import load
from tests.warehouse.helpers import dbt_build as _build
from tests.warehouse.helpers import frame


def _assignments(warehouse: Path) -> dict[str, str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    rows = con.execute(
        "select record_id, customer_id from intermediate.int_identity__record_customers "
        "where customer_id is not null"
    ).fetchall()
    con.close()
    return dict(rows)


def test_ids_survive_growth_and_merges_are_logged(tmp_path):
    landing = generate(GeneratorConfig(150, seed=5, out=tmp_path / "landing")).out
    warehouse = tmp_path / "w.duckdb"
    load(landing, warehouse)
    _build(warehouse, tmp_path / "t1")
    before = _assignments(warehouse)

    # A new CRM record carrying the email of one customer and the phone of another.
    con = duckdb.connect(str(warehouse), read_only=True)
    pair = (
        con.execute("""
        select r.email, r.phone, c.customer_id
        from raw.crm_contacts r
        join intermediate.int_identity__record_customers c
          on c.record_id = 'crm_contacts|' || lower(r.source_system) || ':' || r.contact_id
        join staging.stg_crm__contacts s
          on s.contact_id = lower(r.source_system) || ':' || r.contact_id
        where s.email is not null and s.phone is not null and s.email not like 'info@%'
        order by c.customer_id limit 1000
    """)
        .df()
        .drop_duplicates("customer_id")
        .head(2)
    )
    con.close()
    assert len(pair) == 2
    extra = {c.name: None for c in contracts()["crm_contacts"].columns}
    extra.update(contact_id="bridge-1", source_system="hubspot", email=pair.email.iloc[0],
                 phone=pair.phone.iloc[1], created_at="2026-11-01T00:00:00Z",
                 updated_at="2026-11-01T00:00:00Z")  # fmt: skip
    pd.DataFrame([extra]).to_csv(landing / "crm_contacts_2026-11-01.csv", index=False)
    load(landing, warehouse)
    _build(warehouse, tmp_path / "t2")
    after = _assignments(warehouse)

    # The incremental run recomputed the bridged component only: the records now in the
    # bridge's deterministic component, and no other.
    components_sql = (
        "select record_id, component_id, refreshed_at "
        "from intermediate.int_identity__deterministic_components order by record_id"
    )
    components = frame(warehouse, components_sql)
    refreshed = set(components.record_id[components.refreshed_at == components.refreshed_at.max()])
    bridge = components.component_id[components.record_id == "crm_contacts|hubspot:bridge-1"]
    bridged = set(components.record_id[components.component_id == bridge.item()])
    assert len(bridged) >= 3 and refreshed == bridged
    assert len(components) > 50 * len(refreshed)

    merged = set(pair.customer_id)
    untouched = {r: c for r, c in before.items() if c not in merged}
    assert untouched and all(after[r] == c for r, c in untouched.items())
    survivors = {after[r] for r, c in before.items() if c in merged}
    assert len(survivors) == 1 and survivors <= merged  # the older anchor's id survives

    con = duckdb.connect(str(warehouse), read_only=True)
    log = con.execute(
        "select old_customer_id, new_customer_id, reason from marts.customer_merge_log"
    ).fetchall()
    con.close()
    (survivor,) = survivors
    (gone,) = merged - survivors
    assert log == [(gone, survivor, "merge")]

    # The incremental event fact re-attributed the merged customer's events.
    events_sql = "select event_id, customer_id from marts.fct_web_events order by event_id"
    incremental_events = frame(warehouse, events_sql)
    assert gone not in set(incremental_events.customer_id)

    # A full rebuild from the same raw data gives the same ids and the same attribution.
    _build(warehouse, tmp_path / "t3", "--full-refresh")
    assert _assignments(warehouse) == after
    rebuilt = frame(warehouse, components_sql)
    pd.testing.assert_frame_equal(
        rebuilt.drop(columns="refreshed_at"), components.drop(columns="refreshed_at")
    )
    pd.testing.assert_frame_equal(frame(warehouse, events_sql), incremental_events)


# The identity tables built as `cached_table` (dbt_project.yml): rebuilt when what they read
# changed, kept otherwise (macros/cached_table.sql).
MATCHING = ["int_identity__pair_comparisons", "int_identity__fs_u_probabilities",
            "int_identity__fs_parameters", "int_identity__scored_pairs",
            "int_identity__match_threshold", "int_identity__components"]  # fmt: skip
RESOLVED = ["int_identity__record_customers", "marts.dim_customer_identities"]


def _built_at(warehouse: Path) -> dict[str, object]:
    sql = "select relation_name, built_at from intermediate.dbt_input_fingerprints"
    return {name.removeprefix("intermediate."): built_at
            for name, built_at in frame(warehouse, sql).itertuples(index=False)}  # fmt: skip


def test_identity_tables_are_rebuilt_only_when_what_they_read_changed(tmp_path):
    landing = generate(GeneratorConfig(120, seed=7, out=tmp_path / "landing")).out
    warehouse = tmp_path / "w.duckdb"
    load(landing, warehouse)
    identity = ("--select", "+dim_customer_identities", "--indirect-selection", "cautious")
    _build(warehouse, tmp_path / "t1", *identity)
    first = _built_at(warehouse)
    assert {*MATCHING, "int_identity__record_identifiers", *RESOLVED} <= set(first)
    customers = _assignments(warehouse)

    # The next day's web events, on devices seen before: the device records' last-seen times
    # move (int_identity__records is rebuilt), what the matching reads does not.
    events = pd.read_parquet(landing / "web_events.parquet").head(40).copy()
    events["event_id"] = "next_day_" + events["event_id"].astype(str)
    events["occurred_at"] = "2027-01-02T10:00:00Z"
    events.to_parquet(landing / "web_events_next_day.parquet")
    load(landing, warehouse)
    _build(warehouse, tmp_path / "t2", *identity)
    second = _built_at(warehouse)
    assert frame(warehouse, "select count(*) as n from staging.stg_web__events where "
                 "event_id like 'next_day_%'").n.item() == 40  # fmt: skip
    last_seen = "select max(last_seen_at) as t from intermediate.int_identity__records"
    assert str(frame(warehouse, last_seen).t.item()).startswith("2027-01-02 10:00")
    assert second == first
    assert _assignments(warehouse) == customers

    # A new contact: everything that reads the contacts is built again, and resolves it.
    extra = {c.name: None for c in contracts()["crm_contacts"].columns}
    extra.update(contact_id="late-1", source_system="hubspot", first_name="Zofia",
                 last_name="Zaychenko", email="zofia.zaychenko@example.org",
                 created_at="2027-01-02T00:00:00Z", updated_at="2027-01-02T00:00:00Z")  # fmt: skip
    pd.DataFrame([extra]).to_csv(landing / "crm_contacts_2027-01-02.csv", index=False)
    load(landing, warehouse)
    _build(warehouse, tmp_path / "t3", *identity)
    third = _built_at(warehouse)
    assert all(third[name] > second[name] for name in [*MATCHING, *RESOLVED])
    candidates = frame(
        warehouse, "select record_id from intermediate.int_identity__match_candidates"
    )
    assert "crm_contacts|hubspot:late-1" in set(candidates.record_id)
    assert "crm_contacts|hubspot:late-1" in _assignments(warehouse)
