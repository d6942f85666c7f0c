"""The warehouse object: one writer across processes, and the read copy for BI tools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from segmint.cli import BUSY_EXIT_CODE, app
from segmint.warehouse import DuckDBWarehouse, WarehouseBusy

ROOT = Path(__file__).resolve().parents[2]


def _hold_in_another_process(path: Path, command: str = "segmint run") -> subprocess.Popen:
    """A separate process that takes the warehouse and keeps it until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from segmint.warehouse import DuckDBWarehouse
        with DuckDBWarehouse(Path({str(path)!r})).exclusive({command!r}):
            print("held", flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_is_refused_naming_the_holder_and_a_crash_frees_it(tmp_path):
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    holder = _hold_in_another_process(warehouse.path)
    try:
        seen = warehouse.holder()
        assert seen is not None and seen.pid == holder.pid and seen.command == "segmint run"
        with pytest.raises(WarehouseBusy) as refused, warehouse.exclusive("segmint load"):
            pytest.fail("the lock was granted twice")
        message = str(refused.value)
        assert f"segmint run (pid {holder.pid}" in message and "since 20" in message
        assert "nothing was changed" in message
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a crash: no clean-up runs
        holder.wait()
    assert warehouse.holder() is None
    with warehouse.exclusive("segmint load") as me:
        assert me.pid == os.getpid()


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    with warehouse.exclusive("segmint run"), warehouse.exclusive("segmint load") as inner:
        assert inner.command == "segmint run"  # the outer holder is kept
        assert warehouse.holder().command == "segmint run"
    assert warehouse.holder() is None


def test_load_and_run_from_the_cli_are_refused_while_a_run_holds_the_warehouse(
    tmp_path, monkeypatch, clean_landing
):
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv("SEGMINT_DUCKDB_PATH", str(path))
    monkeypatch.setenv("SEGMINT_LANDING_DIR", str(clean_landing.out))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    holder = _hold_in_another_process(path, "Dagster run abc")
    try:
        for command in (["load"], ["run"], ["sync", "--dry-run"]):
            result = CliRunner().invoke(app, command, env={"COLUMNS": "200"})
            assert result.exit_code == BUSY_EXIT_CODE, (command, result.output)
            assert "refused" in result.output and "Dagster run abc" in result.output
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert not path.exists()  # nothing was written
    result = CliRunner().invoke(app, ["load"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output


def _build_marts(path: Path, value: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute(f"create or replace table marts.customer_rfm as select {value} as score")
        con.execute("comment on table marts.customer_rfm is 'RFM per customer'")
        con.execute("comment on column marts.customer_rfm.score is 'the score'")
        con.execute("create schema if not exists activation")
        con.execute(
            "create or replace table activation.crm_segment_tags as select 'a@x.io' as email"
        )
        con.execute("create schema if not exists raw")
        con.execute("create or replace table raw.crm_contacts as select 'a@x.io' as email")


def test_the_bi_copy_is_replaced_atomically_under_an_open_reader(tmp_path):
    warehouse = DuckDBWarehouse(
        tmp_path / "segmint.duckdb", bi_path=tmp_path / "bi" / "segmint.duckdb"
    )
    _build_marts(warehouse.path, 1)
    copy = warehouse.publish_bi_copy()
    assert copy.tables == ["marts.customer_rfm"] and copy.rows == 1

    reader = duckdb.connect(str(warehouse.bi_path), read_only=True)
    assert reader.execute("select score from marts.customer_rfm").fetchall() == [(1,)]
    # The pipeline writes the warehouse and publishes again while the reader stays connected.
    _build_marts(warehouse.path, 2)
    warehouse.publish_bi_copy()
    assert reader.execute("select score from marts.customer_rfm").fetchall() == [(1,)]
    reader.close()
    with duckdb.connect(str(warehouse.bi_path), read_only=True) as fresh:
        assert fresh.execute("select score from segmint.marts.customer_rfm").fetchall() == [(2,)]
        # What BI sees: the marts with their descriptions; no activation table, no raw data.
        tables = fresh.execute(
            "select schema_name, table_name, comment from duckdb_tables()"
        ).fetchall()
        assert tables == [("marts", "customer_rfm", "RFM per customer")]
        assert fresh.execute(
            "select comment from duckdb_columns() where column_name = 'score'"
        ).fetchone() == ("the score",)
    assert sorted(p.name for p in warehouse.bi_path.parent.iterdir()) == ["segmint.duckdb"]


def test_the_bi_copy_keeps_the_warehouse_catalog_name(tmp_path):
    warehouse = DuckDBWarehouse(tmp_path / "segmint.duckdb", bi_path=tmp_path / "bi.duckdb")
    _build_marts(warehouse.path, 1)
    with pytest.raises(ValueError, match="must keep the warehouse's file name"):
        warehouse.publish_bi_copy()


def test_publishing_does_not_wait_for_readers(tmp_path):
    """A reader that never disconnects does not hold a publish up."""
    warehouse = DuckDBWarehouse(
        tmp_path / "segmint.duckdb", bi_path=tmp_path / "bi" / "segmint.duckdb"
    )
    _build_marts(warehouse.path, 1)
    warehouse.publish_bi_copy()
    code = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute('select score from marts.customer_rfm').fetchone()[0], flush=True); "
        "time.sleep(600)"
    )
    reader = subprocess.Popen([sys.executable, "-c", code, str(warehouse.bi_path)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert reader.stdout.readline().strip() == "1"
        _build_marts(warehouse.path, 3)
        started = time.monotonic()
        warehouse.publish_bi_copy()
        assert time.monotonic() - started < 30
    finally:
        reader.kill()
        reader.wait()
    with duckdb.connect(str(warehouse.bi_path), read_only=True) as fresh:
        assert fresh.execute("select score from marts.customer_rfm").fetchall() == [(3,)]
