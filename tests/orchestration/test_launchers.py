"""What a team launches every day, not the in-process demo: `dagster job execute` (the way
the UI, a schedule or a sensor starts a run), with a BI tool reading the published copy, a
second writer arriving during the run, and a run killed mid-way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from segmint.sync.emulator import CrmEmulator
from segmint.warehouse import DuckDBWarehouse
from tests.orchestration.test_pipeline import crm_environment

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _environment(root: Path, landing: Path, crm: CrmEmulator) -> dict[str, str]:
    return {
        **os.environ,
        **crm_environment(crm, landing, root / "exports"),
        "SEGMINT_DUCKDB_PATH": str(root / "w" / "segmint.duckdb"),
        "SEGMINT_BI_DUCKDB_PATH": str(root / "w" / "bi" / "segmint.duckdb"),
        "SEGMINT_LANDING_DIR": str(landing),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "SEGMINT_DATA_DOCS_DIR": str(root / "docs"),
        "SEGMINT_DBT_TARGET": "ci",
    }


def _launch(env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [str(BIN / "dagster"), "job", "execute", "-m", "orchestration.definitions",
               "-j", "segmint_daily"]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def _runs(home: Path) -> dict[str, dg.DagsterRunStatus]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return {r.run_id: r.status for r in instance.get_runs()}


def test_dagster_job_execute_one_writer_crash_recovery_and_a_bi_reader(tmp_path, clean_landing):
    with CrmEmulator() as crm:
        env = _environment(tmp_path, clean_landing.out, crm)
        warehouse = DuckDBWarehouse(Path(env["SEGMINT_DUCKDB_PATH"]))
        bi = Path(env["SEGMINT_BI_DUCKDB_PATH"])
        home = Path(env["DAGSTER_HOME"])
        home.mkdir()  # Dagster's CLI requires an existing DAGSTER_HOME (`make ui` creates it)

        # A BI tool holds yesterday's copy open for the whole test.
        bi.parent.mkdir(parents=True)
        with duckdb.connect(str(bi)) as old:
            old.execute("create schema marts")
            old.execute("create table marts.customer_segments as select 'old' as customer_id")
        reader = duckdb.connect(str(bi), read_only=True)

        # Run A starts; while it holds the warehouse a second writer is refused, then A dies.
        first = _launch(env, tmp_path / "run_a.log")
        deadline = time.monotonic() + 180
        while (holder := warehouse.holder()) is None or "Dagster run" not in holder.command:
            assert first.poll() is None, (tmp_path / "run_a.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "run A never took the warehouse"
            time.sleep(0.5)
        for command in (["load"], ["run"]):
            refused = subprocess.run([str(BIN / "segmint"), *command], env=env, cwd=ROOT,
                                     capture_output=True, text=True, timeout=300)  # fmt: skip
            assert refused.returncode == 3, refused.stdout + refused.stderr
            assert holder.command in refused.stderr and "nothing was changed" in refused.stderr
        os.killpg(first.pid, signal.SIGKILL)  # a crash: the run and its dbt child die at once
        first.wait()
        (killed,) = [run for run, status in _runs(home).items()
                     if status == dg.DagsterRunStatus.STARTED]  # fmt: skip

        # Run B, launched the same way, completes and marks A failed.
        second = _launch(env, tmp_path / "run_b.log")
        assert second.wait(timeout=900) == 0, (tmp_path / "run_b.log").read_text()[-5000:]
        statuses = _runs(home)
        assert statuses[killed] == dg.DagsterRunStatus.FAILURE
        assert sorted(status.value for status in statuses.values()) == ["FAILURE", "SUCCESS"]
        assert warehouse.holder() is None

    # The reader kept its snapshot through the run; on reconnect it sees the new marts.
    assert reader.execute("select customer_id from marts.customer_segments").fetchall() == [
        ("old",)
    ]
    reader.close()
    with duckdb.connect(str(bi), read_only=True) as fresh, warehouse.connect(True) as w:
        count = "select count(distinct customer_id) from marts.customer_segments"
        assert fresh.execute(count).fetchone() == w.execute(count).fetchone()
        assert fresh.execute(count).fetchone()[0] > 300
