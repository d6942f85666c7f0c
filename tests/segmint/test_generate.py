import hashlib

import duckdb
import pandas as pd
import pytest

from segmint.contracts import TABLES, contracts
from segmint.generate import ARCHETYPES, GeneratorConfig, generate


def _digests(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path):
    a = generate(GeneratorConfig(150, seed=3, out=tmp_path / "a"))
    b = generate(GeneratorConfig(150, seed=3, out=tmp_path / "b"))
    c = generate(GeneratorConfig(150, seed=4, out=tmp_path / "c"))
    assert _digests(a.out) == _digests(b.out)
    assert _digests(a.out)["orders.parquet"] != _digests(c.out)["orders.parquet"]


def test_one_file_per_table_with_contract_columns(clean_landing):
    for table in TABLES:
        frame = pd.read_parquet(clean_landing.out / f"{table}.parquet")
        assert list(frame.columns) == [c.name for c in contracts()[table].columns]
        assert len(frame) == clean_landing.rows[table]
    assert clean_landing.rows["web_events"] > clean_landing.rows["orders"] > 0


def test_truth_covers_every_record(clean_landing):
    truth = clean_landing.out / "truth"
    con = duckdb.connect()
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    contacts = clean_landing.out / "crm_contacts.parquet"
    assert (
        q(f"""select count(*) from (select distinct source_system, contact_id
                 from '{contacts}') c anti join '{truth}/contacts.parquet' t
                 using (source_system, contact_id)""")
        == 0
    )
    assert (
        q(f"""select count(*) from '{clean_landing.out}/orders.parquet' o
                 anti join '{truth}/orders.parquet' t using (order_id)""")
        == 0
    )
    assert (
        q(f"""select count(*) from (select distinct anonymous_id
                 from '{clean_landing.out}/web_events.parquet') e
                 anti join '{truth}/devices.parquet' t using (anonymous_id)""")
        == 0
    )
    assert q(f"select count(*) from '{truth}/persons.parquet'") == 400
    archetypes = {
        r[0]
        for r in con.execute(f"select distinct archetype from '{truth}/persons.parquet'").fetchall()
    }
    assert archetypes == set(ARCHETYPES)


def test_data_has_the_traps_identity_resolution_must_handle(clean_landing):
    out, truth = clean_landing.out, clean_landing.out / "truth"
    con = duckdb.connect()
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    # The same person in several systems.
    assert (
        q(f"""select count(*) from (select person_id from '{truth}/contacts.parquet'
                 group by 1 having count(distinct source_system) > 1)""")
        > 50
    )
    # Email written in different case or with spaces for the same mailbox.
    assert (
        q(f"select count(*) from '{out}/crm_contacts.parquet' where email <> lower(trim(email))")
        > 10
    )
    # A device shared by two people, and a shared info@ mailbox, that must not merge them.
    assert (
        q(f"""select count(*) from (select anonymous_id from '{truth}/devices.parquet'
                 group by 1 having count(distinct person_id) > 1)""")
        >= 1
    )
    assert q(f"select count(*) from '{out}/crm_contacts.parquet' where email like 'info@%'") >= 1
    # Anonymous browsing that a later login links: a device with events before and after.
    assert (
        q(f"""select count(*) from (select anonymous_id from '{out}/web_events.parquet'
                 group by 1 having count(user_id) > 0 and count(*) > count(user_id))""")
        > 10
    )
    # Funnels that stop at the cart, cancellations and refunds, both consent statuses.
    assert q(
        f"select count(*) from '{out}/web_events.parquet' where event_type = 'add_to_cart'"
    ) > q(f"select count(*) from '{out}/web_events.parquet' where event_type = 'purchase'")
    assert q(f"select count(distinct status) from '{out}/orders.parquet'") == 3
    assert q(f"select count(distinct status) from '{out}/consent_events.parquet'") == 2
    assert q(f"select count(distinct tone) from '{truth}/tickets.parquet'") == 3


def test_archetypes_behave_differently(clean_landing):
    out, truth = clean_landing.out, clean_landing.out / "truth"
    con = duckdb.connect()
    rows = dict(
        con.execute(f"""
        select p.archetype, avg(coalesce(n, 0)) from '{truth}/persons.parquet' p
        left join (select person_id, count(*) as n from '{truth}/orders.parquet' group by 1) o
        using (person_id) group by 1""").fetchall()
    )
    assert rows["loyal_high_spender"] > 2 * rows["window_shopper"]
    discount_share = dict(
        con.execute(f"""
        select p.archetype, avg(case when o.discount_amount > 0 then 1 else 0 end)
        from '{out}/orders.parquet' o join '{truth}/orders.parquet' t using (order_id)
        join '{truth}/persons.parquet' p using (person_id) group by 1""").fetchall()
    )
    assert discount_share["deal_seeker"] > 2 * discount_share["loyal_high_spender"]


def test_messiness_breaks_rows_and_records_them(messy_landing):
    bad = pd.read_parquet(messy_landing.out / "truth" / "bad_rows.parquet")
    assert len(bad) == sum(messy_landing.bad_rows.values()) > 0
    assert bad["kind"].nunique() >= 15
    total = sum(messy_landing.rows.values())
    assert 0.03 < len(bad) / total < 0.07


@pytest.mark.parametrize("bad", [{"customers": 0}, {"customers": 10, "messiness": 0.9},
                                 {"customers": 10, "file_format": "xlsx"}])  # fmt: skip
def test_invalid_configuration_is_refused(bad, tmp_path):
    with pytest.raises(ValueError):
        GeneratorConfig(out=tmp_path, **bad)
