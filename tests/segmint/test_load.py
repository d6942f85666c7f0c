import json
import shutil

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmint.contracts import TABLES, contracts
from segmint.generate import GeneratorConfig, generate
from segmint.load import LoadError, _kept_row_number, load, table_for


def _count(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_clean_files_load_completely(clean_landing, warehouse):
    report = load(clean_landing.out, warehouse)
    totals = report.totals()
    for table in TABLES:
        assert totals[table]["read"] == clean_landing.rows[table]
        assert totals[table]["loaded"] == clean_landing.rows[table]
        assert _count(warehouse, f"select count(*) from raw.{table}") == clean_landing.rows[table]
    assert _count(warehouse, "select count(*) from raw.quarantined_rows") == 0


def test_every_row_is_loaded_or_quarantined(messy_landing, warehouse):
    report = load(messy_landing.out, warehouse)
    for f in report.files:
        assert f.rows_read == f.rows_loaded + f.rows_quarantined
        in_raw = _count(
            warehouse, f"select count(*) from raw.{f.table} where _source_file = '{f.path}'"
        )
        in_quarantine = _count(
            warehouse, f"select count(*) from raw.quarantined_rows where source_file = '{f.path}'"
        )
        assert (in_raw, in_quarantine) == (f.rows_loaded, f.rows_quarantined)
        assert f.rows_read == messy_landing.rows[f.table]


def test_quarantine_names_the_exact_broken_rows_and_fields(messy_landing, warehouse):
    load(messy_landing.out, warehouse)
    expected = pd.read_parquet(messy_landing.out / "truth" / "bad_rows.parquet")
    con = duckdb.connect(str(warehouse), read_only=True)
    got = con.execute(
        "select source_table, row_number, field, reason, source_file, payload "
        "from raw.quarantined_rows"
    ).df()
    con.close()
    assert sorted(zip(got.source_table, got.row_number, strict=True)) == sorted(
        zip(expected.table, expected.row_number, strict=True)
    )
    assert got["source_file"].str.endswith(".csv").all()
    for row in got.itertuples():
        columns = {c.name for c in contracts()[row.source_table].columns}
        assert row.field and set(row.field.split(",")) <= columns
        assert row.field.split(",")[0] in row.reason
        payload = json.loads(row.payload)
        assert set(payload) == columns  # the raw row as received, nothing lost


def test_loading_the_same_files_again_adds_nothing(clean_landing, warehouse):
    load(clean_landing.out, warehouse)
    again = load(clean_landing.out, warehouse)
    assert all(f.skipped_as for f in again.files)
    assert _count(warehouse, "select count(*) from raw.orders") == clean_landing.rows["orders"]
    assert _count(warehouse, "select count(*) from raw.loaded_files") == len(TABLES)


def test_same_content_under_another_name_is_not_loaded_twice(clean_landing, warehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(clean_landing.out / "orders.parquet", landing / "orders.parquet")
    shutil.copy(clean_landing.out / "orders.parquet", landing / "orders_copy.parquet")
    report = load(landing, warehouse)
    assert [f.skipped_as is None for f in report.files] == [True, False]
    assert _count(warehouse, "select count(*) from raw.orders") == clean_landing.rows["orders"]


def test_missing_required_column_fails_and_loads_nothing(clean_landing, warehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(clean_landing.out / "crm_contacts.parquet", landing)
    orders = pd.read_parquet(clean_landing.out / "orders.parquet").drop(columns=["status"])
    orders.to_csv(landing / "orders.csv", index=False)
    with pytest.raises(LoadError, match=r"orders\.csv: required column\(s\) missing: status"):
        load(landing, warehouse)
    # Nothing half-loaded: not even the valid contacts file.
    assert _count(warehouse, "select count(*) from raw.crm_contacts") == 0


def test_json_lines_missing_a_required_key_fail_and_load_nothing(
    clean_landing, warehouse, tmp_path
):
    # A JSON Lines file's keys are read when it is staged, inside the load's one
    # transaction: the files loaded before it are rolled back.
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(clean_landing.out / "crm_contacts.parquet", landing)
    orders = pd.read_parquet(clean_landing.out / "orders.parquet").drop(columns=["status"])
    orders.to_json(landing / "orders.jsonl", orient="records", lines=True)
    with pytest.raises(LoadError, match=r"orders\.jsonl: required column\(s\) missing: status"):
        load(landing, warehouse)
    assert _count(warehouse, "select count(*) from raw.crm_contacts") == 0
    assert _count(warehouse, "select count(*) from raw.loaded_files") == 0


def test_json_lines_spelling_a_key_differently_lose_no_value(warehouse, tmp_path):
    # Lines from two producers: "status" and " Status" are the same field (names match
    # ignoring case and surrounding spaces); each line's value comes from its own spelling.
    landing = tmp_path / "landing"
    landing.mkdir()
    lines = [
        {
            "order_id": "o1",
            "ordered_at": "2026-01-01T00:00:00Z",
            "status": "completed",
            "total_amount": 10,
        },
        {
            "order_id": "o2",
            "ordered_at": "2026-01-01T00:00:00Z",
            " Status": "refunded",
            "total_amount": 20,
        },
        {
            "ORDER_ID": "o3",
            "ordered_at": "2026-01-01T00:00:00Z",
            "status": "cancelled",
            "total_amount": 30,
        },
    ]
    (landing / "orders.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    load(landing, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select order_id, status from raw.orders order by 1").fetchall()
    assert rows == [("o1", "completed"), ("o2", "refunded"), ("o3", "cancelled")]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_header_naming_one_field_twice_fails_naming_both(warehouse, tmp_path, fmt):
    landing = tmp_path / "landing"
    landing.mkdir()
    frame = pd.DataFrame({"order_id": ["o1"], "ordered_at": ["2026-01-01T00:00:00Z"],
                          "status": ["completed"], "Status": ["refunded"],
                          "total_amount": [10]})  # fmt: skip
    if fmt == "csv":
        frame.to_csv(landing / "orders.csv", index=False)
    else:
        frame.to_parquet(landing / "orders.parquet")
    with pytest.raises(LoadError, match=rf"orders\.{fmt}: .*same field twice.*'status', 'Status'"):
        load(landing, warehouse)
    assert _count(warehouse, "select count(*) from raw.orders") == 0


def test_unreadable_file_fails_naming_the_file(warehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "orders.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(LoadError, match=r"orders\.parquet: cannot be read"):
        load(landing, warehouse)


def test_absent_sources_are_empty_tables(clean_landing, warehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(clean_landing.out / "orders.parquet", landing)
    load(landing, warehouse)
    for table in TABLES:
        expected = clean_landing.rows["orders"] if table == "orders" else 0
        assert _count(warehouse, f"select count(*) from raw.{table}") == expected


def test_csv_and_jsonl_load_the_same_rows_as_parquet(tmp_path):
    frames = {}
    for fmt in ("parquet", "csv", "jsonl"):
        out = generate(GeneratorConfig(60, seed=11, out=tmp_path / fmt, file_format=fmt)).out
        db = tmp_path / f"{fmt}.duckdb"
        load(out, db)
        con = duckdb.connect(str(db), read_only=True)
        frames[fmt] = {}
        for table in TABLES:
            cols = ", ".join(f'"{c.name}"' for c in contracts()[table].columns)
            frames[fmt][table] = con.execute(
                f"select {cols} from raw.{table} order by _source_row"
            ).df()
        con.close()
    for table in TABLES:
        assert len(frames["parquet"][table]) > 0 or table == "erasure_requests"
        pd.testing.assert_frame_equal(frames["parquet"][table], frames["csv"][table])
        pd.testing.assert_frame_equal(frames["parquet"][table], frames["jsonl"][table])


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_csv_file_with_another_delimiter_loads_the_same_rows(tmp_path, delimiter):
    # Spreadsheets in many locales write ';'; other tools tab or '|'. A field holding a
    # comma stays one field (the street "1, Main St"), as does a quoted delimiter.
    out = generate(GeneratorConfig(40, seed=5, out=tmp_path / "land", file_format="csv")).out
    contacts = pd.read_csv(out / "crm_contacts.csv", dtype=str, keep_default_na=False)
    contacts.loc[0, "street"] = "1, Main St"
    contacts.loc[1, "city"] = f"Saint{delimiter}Malo"
    frames = {}
    for name, sep in (("comma", ","), ("other", delimiter)):
        folder = tmp_path / name
        folder.mkdir()
        contacts.to_csv(folder / "crm_contacts.csv", sep=sep, index=False)
        load(folder, tmp_path / f"{name}.duckdb")
        con = duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True)
        frames[name] = con.execute(
            "select * exclude (_source_file, _loaded_at, _load_id) from raw.crm_contacts "
            "order by _source_row"
        ).df()
        assert con.execute("select count(*) from raw.quarantined_rows").fetchone()[0] == 0
        con.close()
    assert len(frames["other"]) == len(contacts)
    assert frames["other"].loc[0, "street"] == "1, Main St"
    assert frames["other"].loc[1, "city"] == f"Saint{delimiter}Malo"
    pd.testing.assert_frame_equal(frames["comma"], frames["other"])


def test_unknown_columns_are_reported_and_ignored(clean_landing, warehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    frame = pd.read_parquet(clean_landing.out / "orders.parquet")
    frame["loyalty_tier"] = "gold"
    frame.to_parquet(landing / "orders.parquet")
    (landing / "notes.txt").write_text("not data")
    (landing / "inventory.csv").write_text("sku\n1\n")
    report = load(landing, warehouse)
    assert report.files[0].ignored_columns == ["loyalty_tier"]
    assert [p.name for p in report.unrecognized] == ["inventory.csv", "notes.txt"]


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("orders.parquet", "orders"),
        ("orders_2026-11-01.csv", "orders"),
        ("order_items.jsonl", "order_items"),
        ("order_items-part2.csv", "order_items"),
        ("web_events/part-0001.parquet", "web_events"),
        ("orders.xlsx", None),
        ("ordersheet.csv", None),
    ],
)
def test_files_are_matched_to_tables(tmp_path, name, table):
    assert table_for(tmp_path / name) == table


def test_a_csv_row_starting_with_a_hash_is_read_not_taken_for_a_comment(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    columns = ("order_id", "ordered_at", "status", "total_amount")
    rows = [dict.fromkeys(columns), {**dict.fromkeys(columns), "order_id": "#1"}]
    pd.DataFrame(rows).to_csv(landing / "orders.csv", index=False)
    report = load(landing, tmp_path / "w.duckdb")
    f = report.files[0]
    assert f.rows_read == 2 == f.rows_loaded + f.rows_quarantined


_cell = st.one_of(
    st.none(),
    # Printable text: a bare carriage return inside a field is not valid CSV for any reader.
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12),
    st.sampled_from(["", " ", "-1", "0", "1.5", "2026-01-01", "completed", "a@b.co", "nan"]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.fixed_dictionaries({c: _cell for c in
       ("order_id", "customer_ref", "email", "ordered_at", "status", "currency",
        "total_amount", "discount_amount", "channel")}), min_size=1, max_size=15))  # fmt: skip
def test_any_csv_content_is_fully_accounted_for(tmp_path_factory, rows):
    landing = tmp_path_factory.mktemp("fuzz")
    pd.DataFrame(rows).to_csv(landing / "orders.csv", index=False)
    report = load(landing, landing / "w.duckdb")
    f = report.files[0]
    assert f.rows_read == len(rows) == f.rows_loaded + f.rows_quarantined
    loaded = _count(landing / "w.duckdb", "select count(*) from raw.orders where total_amount < 0")
    assert loaded == 0


def _quarantine(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            row: (field, reason, payload)
            for row, field, reason, payload in con.execute(
                "select row_number, field, reason, payload from raw.quarantined_rows"
            ).fetchall()
        }
    finally:
        con.close()


def test_damaged_csv_rows_are_quarantined_with_the_readers_message(tmp_path):
    """Ragged rows, bytes that are not UTF-8 and a line over the reader's size limit each
    become a quarantined row; the rows around them load, numbered as in the file (a quoted
    line break does not start a row)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    ok = b"2026-01-01T00:00:00Z,completed"
    lines = [
        b"order_id,ordered_at,status,total_amount",
        b"o1," + ok + b",5",  # 1 loads
        b"o2," + ok + b",6,extra",  # 2 too many columns
        b"o3,2026-01-01T00:00:00Z,compl\xe9ted,7",  # 3 Latin-1 byte
        b'"o4","2026-01-01T00:00:00Z","completed","8"',  # 4 loads
        b'o5,2026-01-01T00:00:00Z,"two\nlines",9',  # 5 one row over two lines: bad status
        b"o6," + ok,  # 6 too few columns
        b"o7," + ok + b"," + b"9" * 3_000_000,  # 7 over the line size limit
        b"o8," + ok + b",10",  # 8 loads
    ]
    (landing / "orders.csv").write_bytes(b"\n".join(lines) + b"\n")
    report = load(landing, tmp_path / "w.duckdb")
    (result,) = report.files
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (8, 3, 5)
    loaded = _count(tmp_path / "w.duckdb", "select string_agg(_source_row::varchar, ',' "
                    "order by _source_row) from raw.orders")  # fmt: skip
    assert loaded == "1,4,8"
    bad = _quarantine(tmp_path / "w.duckdb")
    assert sorted(bad) == [2, 3, 5, 6, 7]
    assert "too many columns" in bad[2][1] and "o2," in bad[2][2]
    assert bad[3][0] == "status" and "not utf-8" in bad[3][1]
    assert bad[5][0] == "status" and "is not one of" in bad[5][1]
    assert "too few" in bad[6][1] or "missing columns" in bad[6][1]
    assert "line size" in bad[7][1] and bad[7][2].startswith("o7,")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_rows_of_a_large_file_keep_their_numbers_across_the_readers_threads(tmp_path, fmt):
    """300,000 rows: read in many chunks, in parallel, with rows the reader or the JSON
    parser rejects and rows the contract rejects far into the file. Every row keeps its
    number in the file."""
    landing = tmp_path / "landing"
    landing.mkdir()
    n = 300_000
    damaged = {1_000, 150_001, 299_999}  # a column too many; a line that is not JSON
    broken = {7, 130_000, 250_123}  # the contract rejects them (status not in the enum)
    lines = ["order_id,ordered_at,status,total_amount"] if fmt == "csv" else []
    for row in range(1, n + 1):
        status = "lost" if row in broken else "completed"
        if fmt == "csv":
            extra = ",x" if row in damaged else ""
            lines.append(f"o{row},2026-01-01T00:00:00Z,{status},{row % 97}{extra}")
        elif row in damaged:
            lines.append(f'{{"order_id": "o{row}", ')
        else:
            lines.append(json.dumps({"order_id": f"o{row}", "ordered_at": "2026-01-01T00:00:00Z",
                                     "status": status, "total_amount": row % 97}))  # fmt: skip
    (landing / f"orders.{fmt}").write_text("\n".join(lines) + "\n")
    load(landing, tmp_path / "w.duckdb")
    assert sorted(_quarantine(tmp_path / "w.duckdb")) == sorted(damaged | broken)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        payloads = con.execute(
            "select row_number, payload from raw.quarantined_rows where reason like 'status%'"
        ).fetchall()
    # Each broken row's payload is its own row, whichever reader thread read it.
    assert sorted((row, json.loads(payload)["order_id"]) for row, payload in payloads) == [
        (row, f"o{row}") for row in sorted(broken)
    ]
    mismatched = _count(
        tmp_path / "w.duckdb",
        "select count(*) from raw.orders where order_id <> 'o' || _source_row",
    )
    assert mismatched == 0
    assert _count(tmp_path / "w.duckdb", "select count(*) from raw.orders") == n - 6


def test_rows_are_numbered_in_order_when_rowids_are_not_consecutive():
    """The fallback of the row numbering: rowids with a gap still number the rows 1..n in
    the order they were appended."""
    con = duckdb.connect()
    con.execute("create temp table t as select range as v from range(10)")
    con.execute("delete from t where v = 3")
    con.execute("insert into t values (10), (11)")
    kept = _kept_row_number(con, "t")
    rows = con.execute(f"select v, {kept} from t as s order by v").fetchall()
    assert [k for _, k in rows] == list(range(1, 12))
    assert [v for v, _ in rows] == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]


def test_damaged_json_lines_are_quarantined_and_blank_lines_skipped(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    row = '{{"order_id": "{}", "ordered_at": "2026-01-01T00:00:00Z", "status": "completed", ' \
          '"total_amount": 5}}'  # fmt: skip
    lines = [
        row.format("o1").encode(),  # 1 loads
        b"",  # 2 blank: not a row
        b'{"order_id": "o3", "broken',  # 3 not JSON
        b'"just a string"',  # 4 not an object
        row.format("o5").encode().replace(b"o5", b"o\xe95"),  # 5 not UTF-8
        row.format("o6").encode(),  # 6 loads
        row.format("o7").encode().replace(b"}", b', "note": "' + b"x" * 3_000_000 + b'"}'),
        row.format("o8").encode().replace(b"completed", b"lost"),
    ]  # 7 over the line size limit; 8 breaks the contract, after two lines the reader refused
    (landing / "orders.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    report = load(landing, tmp_path / "w.duckdb")
    (result,) = report.files
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (7, 2, 5)
    bad = _quarantine(tmp_path / "w.duckdb")
    assert sorted(bad) == [3, 4, 5, 7, 8]
    # Its payload is read again from the file: its own line, past the refused ones.
    assert bad[8][0] == "status" and bad[8][2] == lines[7].decode()
    assert bad[3] == ("(row)", "(row): not a JSON object", '{"order_id": "o3", "broken')
    assert bad[5][0] == "(row)" and "not utf-8" in bad[5][1]
    assert "line size" in bad[7][1] and bad[7][2].startswith('{"order_id": "o7"')


@pytest.mark.parametrize("name", ["orders.csv", "orders.jsonl", "orders.parquet"])
def test_a_zero_byte_file_of_any_format_loads_zero_rows(tmp_path, name):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / name).write_bytes(b"")
    (result,) = load(landing, tmp_path / "w.duckdb").files
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (0, 0, 0)
    assert _count(tmp_path / "w.duckdb", "select count(*) from raw.loaded_files") == 1
