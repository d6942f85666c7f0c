"""The contract compiled to SQL (segmint/contract_sql.py) gives jsonschema's verdicts.

jsonschema (with fastjsonschema for the verdict) is the reference: on every row of the
generator's messy files, and on a Hypothesis corpus of awkward values, the rows the SQL
quarantines and the fields it names equal the reference's.
"""

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmint.contract_sql import ContractSqlError, re2_pattern, trimmed, violations_sql
from segmint.contracts import TABLES, contracts
from segmint.load import _columns, _q, _stage_file, discover, reference_violations


def _verdicts(con, contract, staged):
    sql = {
        row: sorted(field.split(","))
        for row, field in con.execute(
            f"select _row, field from ({violations_sql(contract, staged, _q)})"
        ).fetchall()
    }
    reference = {
        row: sorted(field.split(","))
        for row, field, _, _ in reference_violations(con, contract, staged)
    }
    return sql, reference


def test_sql_verdicts_equal_jsonschema_on_the_generators_messy_files(messy_landing):
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    found, _ = discover(messy_landing.out)
    assert {table for table, _ in found} == set(TABLES)
    quarantined = 0
    for table, path in found:
        contract = contracts()[table]
        staged, _ = _stage_file(con, contract, path, _columns(con, path))
        sql, reference = _verdicts(con, contract, staged)
        assert sql == reference, table
        quarantined += len(sql)
    assert quarantined > 100  # the messy files break every kind of rule


def test_reasons_read_like_the_reference(messy_landing):
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    found, _ = discover(messy_landing.out)
    same = total = 0
    for table, path in found:
        contract = contracts()[table]
        staged, _ = _stage_file(con, contract, path, _columns(con, path))
        sql = dict(
            con.execute(
                f"select _row, reason from ({violations_sql(contract, staged, _q)})"
            ).fetchall()
        )
        for row, _, reason, _ in reference_violations(con, contract, staged):
            total += 1
            same += sql[row] == reason
    assert total > 100 and same / total > 0.95


# Awkward text for every kind of rule: numbers in many notations, dates, JSON, Unicode
# whitespace around emails, empty and blank values, long values.
_TEXT = st.one_of(
    st.sampled_from(
        ["", " ", "0", "1", "-1", "1.5", " 7 ", "1e3", "1e400", "NaN", "inf", "-0", "0x10",
         "9223372036854775807", "1,5", "two", "2026-02-30", "2026-01-01", "2026-01-01T10:00:00Z",
         "2026-01-01 10:00:00+02:00", "10000-01-01", "0000-01-01", "soon", "{\"a\": 1}", "[1,",
         "null", "a@b.co", " a@b.co ", "a@b.co\n", "a @b.co", "a@b.co\u00a0", "\u2003a@b.co",
         "a@@b.co", "USD", "usd ", "US Dollar", "completed", "Completed", "granted", "revoked",
         "x" * 200]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)  # fmt: skip


@pytest.mark.parametrize("table", TABLES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_sql_verdicts_equal_jsonschema_on_awkward_values(table, data):
    contract = contracts()[table]
    names = [c.name for c in contract.columns]
    rows = data.draw(
        st.lists(st.lists(st.one_of(st.none(), _TEXT), min_size=len(names),
                          max_size=len(names)), min_size=1, max_size=15)
    )  # fmt: skip
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    columns = ", ".join(f"{_q(n)} varchar" for n in names)
    con.execute(f"create temp table staged (_row bigint, {columns}, _payload varchar)")
    con.executemany(
        f"insert into staged values (?, {', '.join('?' for _ in names)}, '{{}}')",
        [[i + 1, *row] for i, row in enumerate(rows)],
    )
    sql, reference = _verdicts(con, contract, "staged")
    assert sql == reference


def test_python_whitespace_and_end_of_text_survive_the_translation():
    con = duckdb.connect()
    pattern = re2_pattern(r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")
    cases = {"a@b.co": True, "a@b.co\n": True, "a@b.co\u00a0": True, "a @b.co": False,
             "a@b.co\u2003x": False, "\u2003a@b.co": True}  # fmt: skip
    for text, expected in cases.items():
        assert con.execute("select regexp_matches(?, ?)", [text, pattern]).fetchall() == [
            (expected,)
        ], repr(text)
    with pytest.raises(ContractSqlError, match="spell the characters out"):
        re2_pattern(r"^\d+$")


_SPACES = [" ", "\t", "\n", "\xa0", "\u1680", "\u2003", "\u202f", "\u3000", "\ufeff", "\x85"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_SPACES), st.text(max_size=4)), max_size=8))
def test_the_quick_trim_equals_duckdbs_trim(parts):
    """`trimmed` skips DuckDB's slow trim only where it would change nothing."""
    text = "".join(parts)
    con = duckdb.connect()
    got, want = con.execute(f"select {trimmed('$v')}, trim($v)", {"v": text}).fetchall()[0]
    assert got == want
