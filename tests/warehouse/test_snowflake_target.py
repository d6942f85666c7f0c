"""The same steps on the Snowflake target, against fakesnow's emulation of the wire API.

Snowflake itself cannot run here; fakesnow serves Snowflake's HTTP API on 127.0.0.1
(tests/fakesnow_server.py, with the emulator's gaps mended) and dbt-snowflake and segmint's
Python steps talk to it as to a real account. The same raw rows go through the job's steps in
its order on both warehouses, each step reaching its warehouse through the warehouse object:
ticket tone, dbt (seeds, models, snapshot), clustering, predictions, then the models that
read them. Staging, the marts and what the Python steps wrote must be the same rows on both.
dbt's unit and data tests run on DuckDB only, since fakesnow cannot create the qualified
temporary tables of unit tests and stalls on some test queries.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml.config import ClusteringConfig
from segmint.clusters import run_clustering
from segmint.contracts import TABLES, contracts
from segmint.evaluate import blocking_recall, evaluate_identity, evaluate_segments, match_threshold
from segmint.load import load
from segmint.predictions import run_predictions
from segmint.privacy import ErasureReport, audit, erase, hash_identifier
from segmint.quality.suites import load_suites
from segmint.quality.validate import validate
from segmint.snowflake import SnowflakeWarehouse
from segmint.sync.config import load_destinations
from segmint.sync.emulator import CrmEmulator, seed_from_landing
from segmint.sync.engine import sync_concurrently
from segmint.tone import score_new_tickets
from segmint.warehouse import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[2]
SALT = "a-test-salt-for-both-warehouses"
META = ("_load_id", "_source_file", "_source_row", "_loaded_at")
FORMATS = ("parquet", "csv", "jsonl")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fakesnow_server():
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakesnow_server", str(port)], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "fakesnow did not start"
            time.sleep(0.3)
    yield port
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:  # busy finishing a query: stop it for good
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def _snowflake(port: int) -> SnowflakeWarehouse:
    return SnowflakeWarehouse(
        (("account", "fakesnow"), ("user", "segmint"), ("password", "x"),
         ("database", "SEGMINT"), ("schema", "MAIN"), ("host", "127.0.0.1"),
         ("port", str(port)), ("protocol", "http"))
    )  # fmt: skip


def _landing_files(folder: Path, raw: dict[str, pd.DataFrame]) -> Path:
    """One landing file per table, the formats taking turns, each with damaged rows: a
    required value emptied, and a line the reader cannot take (CSV and JSON Lines)."""
    folder.mkdir(parents=True)
    for i, (table, frame) in enumerate(raw.items()):
        frame = frame.copy()
        required = contracts()[table].required
        if len(frame) and required:
            frame.loc[frame.index[0], required[0]] = None
        kind = FORMATS[i % len(FORMATS)]
        path = folder / f"{table}.{kind}"
        if kind == "parquet":
            frame.to_parquet(path, index=False)
        elif kind == "csv":
            frame.to_csv(path, index=False)
            with path.open("a") as fh:
                fh.write("a,row,with,too,many,fields" + "," * len(frame.columns) + "\n")
        else:
            frame.to_json(path, orient="records", lines=True)
            with path.open("a") as fh:
                fh.write('{"broken": \n')
    return folder


@dataclass
class BothTargets:
    snowflake: SnowflakeWarehouse
    duckdb: Path
    tmp: Path
    tones: dict
    loads: dict
    reloads: dict
    clustering: dict
    predictions: dict
    crms: dict
    quality: dict
    erasures: dict
    truth: Path


@dataclass
class Erasure:
    email: str
    report: ErasureReport
    before: list
    traces: list
    crm_after: dict


def _dbt(command, target: str, env: dict, target_path: Path, variables: str):
    return subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *command, "--project-dir", str(ROOT),
         "--profiles-dir", str(ROOT), "--target", target, "--target-path", str(target_path),
         "--vars", "{" + variables + "}"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def both(fakesnow_server, clean_landing, tmp_path_factory) -> BothTargets:
    """The same raw rows on both warehouses, taken through the job's steps in its order."""
    tmp = tmp_path_factory.mktemp("snowflake_target")
    # A subset of the generator's rows, written as landing files in every format the loader
    # reads, with rows damaged on purpose; then loaded into each warehouse by `segmint load`'s
    # code (segmint.load), on Snowflake through PUT and COPY INTO.
    duck = tmp / "w.duckdb"
    load(clean_landing.out, duck)
    con = duckdb.connect(str(duck), read_only=True)
    raw = {t: con.execute(f"select * exclude ({', '.join(META)}) from raw.{t} "
                          "order by _source_row limit 300").df()
           for t in TABLES}  # fmt: skip
    con.close()
    landing = _landing_files(tmp / "landing", raw)

    snowflake = _snowflake(fakesnow_server)
    with snowflake.connect(step="test-setup") as sf:
        sf.execute("create database if not exists segmint")
    timings: dict[str, float] = {}

    def timed(step: str, name: str, function, *args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            key = f"{step} [{name}]"
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - started

    subset = tmp / "subset.duckdb"
    loads = {name: timed("load", name, load, landing, target)
             for name, target in (("snowflake", snowflake), ("duckdb", subset))}  # fmt: skip
    reloads = {"snowflake": load(landing, snowflake), "duckdb": load(landing, subset)}

    def connections():
        return {"snowflake": snowflake.connect(step="ticket_tones"),
                "duckdb": duckdb.connect(str(subset))}  # fmt: skip

    # Step 1, before dbt: ticket tone, written by Python into each warehouse.
    tones = {}
    for name, step_con in connections().items():
        with step_con:
            tones[name] = timed("ticket tone", name, score_new_tickets, step_con)

    env = {
        **os.environ,
        "SEGMINT_DBT_TARGET": "snowflake",
        "SNOWFLAKE_ACCOUNT": "fakesnow",
        "SNOWFLAKE_USER": "segmint",
        "SNOWFLAKE_PASSWORD": "x",
        "SNOWFLAKE_DATABASE": "SEGMINT",
        "SNOWFLAKE_SCHEMA": "MAIN",
        "SNOWFLAKE_HOST": "127.0.0.1",
        "SNOWFLAKE_PORT": str(fakesnow_server),
        "SNOWFLAKE_PROTOCOL": "http",
        # fakesnow serves one query at a time: concurrent dbt threads stall it.
        "SNOWFLAKE_THREADS": "1",
    }
    # The salt is stored in the warehouse once, sent as a bound parameter (segmint.snowflake);
    # dbt reads it there. Without it, and with the development salt, dbt refuses to start.
    refused = _dbt(["seed", "--select", "countries"], "snowflake", env, tmp / "target", HOLDOUT)
    assert refused.returncode != 0
    assert "no PII salt in the warehouse" in refused.stdout
    segmint = str(Path(sys.executable).parent / "segmint")
    dev = subprocess.run([segmint, "privacy", "store-salt"], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert dev.returncode != 0 and "development PII salt" in dev.stdout + dev.stderr
    env["SEGMINT_PII_SALT"] = SALT
    stored = subprocess.run([segmint, "privacy", "store-salt"], env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert stored.returncode == 0, stored.stdout + stored.stderr
    assert SALT not in stored.stdout + stored.stderr

    duck_env = {**os.environ, "SEGMINT_DUCKDB_PATH": str(subset), "SEGMINT_PII_SALT": SALT}
    targets = {"snowflake": (env, tmp / "target", "persist_docs: false, " + HOLDOUT),
               "duckdb": (duck_env, tmp / "target_duck", HOLDOUT)}  # fmt: skip

    def build(commands) -> None:
        for name, (target_env, path, variables) in targets.items():
            target = "snowflake" if name == "snowflake" else "ci"
            for command in commands:
                # Comments (persist_docs) are left to the daily job's test below: faster.
                step = timed(f"dbt {command[0]}", name, _dbt, command, target, target_env, path,
                             variables)  # fmt: skip
                assert step.returncode == 0, (name, step.stdout[-4000:])

    # Step 2: dbt, seeds to the marts and the snapshot.
    build(BUILD_WITHOUT_TESTS)
    # The quality gates: every suite through Great Expectations, in each warehouse.
    now = datetime(2026, 6, 1)
    quality = {name: timed("quality gates", name, validate, target, load_suites(), now=now)
               for name, target in (("snowflake", snowflake),
                                    ("duckdb", DuckDBWarehouse(subset)))}  # fmt: skip
    # Step 3: clustering and predictions, in Python, read the marts and write schema ml.
    clustering, predictions = {}, {}
    for name, step_con in connections().items():
        with step_con:
            clustering[name] = timed("clustering", name, run_clustering, step_con,
                                     ClusteringConfig(), tmp / name / "ml")  # fmt: skip
            predictions[name] = timed("predictions", name, run_predictions, step_con)
    # Step 4: the models that read what they wrote.
    build([("run", "--select", *ML_READERS)])
    # Step 5: sync the tags to the CRMs, each warehouse to its own emulator seeded alike.
    crms, erasures = {}, {}
    with contextlib.ExitStack() as stack:
        environs, emulators = {}, {}
        for name, step_con in connections().items():
            emulator = emulators[name] = stack.enter_context(CrmEmulator())
            emulator.seed(seed_from_landing(clean_landing.out))
            environs[name] = {
                "SEGMINT_HUBSPOT_URL": emulator.url, "SEGMINT_HUBSPOT_TOKEN": "token",
                "SEGMINT_SALESFORCE_URL": emulator.url, "SEGMINT_SALESFORCE_TOKEN": "token",
            }  # fmt: skip
            with step_con:  # the destinations' URLs and tokens come from environ
                results = timed("crm sync", name, sync_concurrently, step_con,
                                load_destinations(), environs[name])  # fmt: skip
            assert [r.error for r in results if r.error] == [], name
            crms[name] = (_crm_state(emulator), {r.destination.name: r.report for r in results})
        # Step 6: an erasure request arrives in a landing file, is loaded, and is carried out
        # in each warehouse and at its CRMs (segmint.privacy.erase, as the job's ingestion
        # step calls it).
        with duckdb.connect(str(subset), read_only=True) as con:
            (email,) = con.execute(
                "select min(record_key) from sync.synced_records "
                "where destination = 'hubspot' and key_type = 'email'"
            ).fetchone()
        requests = tmp / "requests"
        requests.mkdir()
        (requests / "erasure_requests_2.csv").write_text(
            f"request_id,email,requested_at\nera-both-1,{email.upper()},2026-06-02T09:00:00Z\n"
        )
        for name, step_con in connections().items():
            timed("load", name, load, requests, snowflake if name == "snowflake" else subset)
            with step_con:
                before = audit(step_con, {"email": email})
                report = timed("erasure", name, erase, step_con, SALT,
                               destinations=load_destinations(),
                               environ=environs[name])  # fmt: skip
                traces = audit(step_con, {"email": email})
            erasures[name] = Erasure(email, report, before, traces, _crm_state(emulators[name]))
    # Seconds per step on each warehouse (shown with pytest -s; reported in the notes).
    print("\nstep seconds:", {k: round(v, 1) for k, v in sorted(timings.items())})
    return BothTargets(snowflake, subset, tmp, tones, loads, reloads, clustering, predictions,
                       crms, quality, erasures, clean_landing.out / "truth")  # fmt: skip


def test_an_erasure_erases_the_same_rows_on_snowflake(both):
    """An erasure request loaded into Snowflake is carried out there as on DuckDB: the same
    rows go from the same tables, the CRMs end the same, the suppression list holds the hash,
    and no table or view in either warehouse still holds the email."""
    on_snowflake, on_duckdb = both.erasures["snowflake"], both.erasures["duckdb"]
    assert on_duckdb.report.requests == on_snowflake.report.requests == ["era-both-1"]
    assert on_duckdb.report.customers == on_snowflake.report.customers == 1
    assert on_snowflake.report.rows_removed == on_duckdb.report.rows_removed
    assert on_duckdb.report.rows_removed["raw.crm_contacts"] >= 1
    assert any(key.startswith("marts.") for key in on_duckdb.report.rows_removed)
    assert on_snowflake.report.destinations == on_duckdb.report.destinations
    assert on_duckdb.report.destinations  # the CRMs were reached
    assert on_snowflake.crm_after == on_duckdb.crm_after
    assert on_duckdb.email not in on_duckdb.crm_after["hubspot"]
    # The audit finds the email in the same places on both before, and nowhere after.
    assert {(t.where.lower(), t.rows) for t in on_snowflake.before} == {
        (t.where.lower(), t.rows) for t in on_duckdb.before
    }
    assert len(on_duckdb.before) > 5
    assert on_snowflake.traces == on_duckdb.traces == []
    hashed = hash_identifier(SALT, on_duckdb.email)
    query = "select request_id from privacy.suppression_list where identifier_hash = ?"
    with both.snowflake.connect(step="test") as sf:
        assert sf.execute(query, [hashed]).fetchall() == [("era-both-1",)]
        logged = sf.execute("select count(*) from privacy.erasure_log").fetchall()[0][0]
    with duckdb.connect(str(both.duckdb), read_only=True) as con:
        assert con.execute(query, [hashed]).fetchall() == [("era-both-1",)]
        assert logged == con.execute("select count(*) from privacy.erasure_log").fetchall()[0][0]
    assert logged > 3


def test_evaluate_and_the_run_summary_read_snowflake_as_they_read_duckdb(both):
    """`segmint evaluate` and the demo's summary on the snowflake target: the same scores
    and counts as from the DuckDB file, read from Snowflake (the truth stays local)."""
    from segmint.cli import _segment_sizes, _warehouse_totals

    targets = (both.snowflake, DuckDBWarehouse(both.duckdb))
    identity = [evaluate_identity(t, both.truth) for t in targets]
    assert identity[0] == identity[1]
    assert identity[1].records > 500 and identity[1].customers > 50
    assert blocking_recall(targets[0], both.truth / "contacts.parquet") == blocking_recall(
        targets[1], both.truth / "contacts.parquet"
    )
    thresholds = [match_threshold(t) for t in targets]
    assert thresholds[1] is not None and thresholds[0].keys() == thresholds[1].keys()
    for key, value in thresholds[1].items():
        if isinstance(value, float):
            assert float(thresholds[0][key]) == pytest.approx(value, rel=1e-9), key
        else:
            assert thresholds[0][key] == value, key
    segments = [evaluate_segments(t, both.truth) for t in targets]
    assert segments[0].customers == segments[1].customers > 50
    assert segments[0].adjusted_rand_index == pytest.approx(segments[1].adjusted_rand_index)
    assert _warehouse_totals(targets[0]) == _warehouse_totals(targets[1])
    assert _warehouse_totals(targets[1])[1] > 50
    assert _segment_sizes(targets[0]) == _segment_sizes(targets[1]) != []


def _crm_state(emulator: CrmEmulator) -> dict:
    """What the CRM holds, keyed by email (record ids depend on the order of requests)."""
    state = emulator.state
    volatile = {"hs_object_id", "lastmodifieddate", "createdate"}
    hubspot = {
        c["properties"].get("email"): {k: v for k, v in c["properties"].items()
                                       if k not in volatile}
        for c in state.hubspot.values()
    }  # fmt: skip
    salesforce = {
        c.get("Email"): {k: v for k, v in c.items() if k not in ("Id", "attributes")}
        for c in state.salesforce.values()
    }
    return {"hubspot": hubspot, "salesforce": salesforce}


def test_the_load_writes_the_same_raw_tables_on_snowflake(both):
    """`segmint load` on the snowflake target: every row loaded or quarantined with the
    reader's or the contract's reason, as on DuckDB; the checksums are Snowflake's, so the
    same files loaded again add nothing."""
    on_snowflake, on_duckdb = both.loads["snowflake"], both.loads["duckdb"]
    assert on_snowflake.totals() == on_duckdb.totals()
    totals = on_duckdb.totals().values()
    assert sum(t["quarantined"] for t in totals) >= len(TABLES)  # the damage, every file
    assert all(t["read"] == t["loaded"] + t["quarantined"] for t in totals)
    for name, report in both.reloads.items():
        assert all(f.skipped_as for f in report.files), name
        assert sum(t["read"] for t in report.totals().values()) == 0, name
    queries = {  # each with the columns that order its rows
        **{f"select * exclude (_load_id, _loaded_at) from {{db}}raw.{t}": ["_source_row"]
           for t in TABLES},
        "select source_table, source_file, row_number, field, reason, errors, payload "
        "from {db}raw.quarantined_rows": ["source_file", "row_number"],
        "select source_table, file_path, checksum, rows_read, rows_loaded, rows_quarantined "
        "from {db}raw.loaded_files": ["file_path"],
    }  # fmt: skip
    con = duckdb.connect(str(both.duckdb), read_only=True)
    compared = 0
    with both.snowflake.connect(step="test") as sf:
        for query, order in queries.items():
            on_duckdb = con.execute(query.format(db="")).df()
            on_snowflake = sf.execute(query.format(db="segmint.")).df()
            compared += len(on_duckdb)
            pd.testing.assert_frame_equal(
                _normalised(on_snowflake[list(on_duckdb.columns)], by=order),
                _normalised(on_duckdb, by=order),
                check_dtype=False,
            )
    con.close()
    assert compared > 1000


def test_staging_and_marts_are_the_same_on_snowflake(both):
    con = duckdb.connect(str(both.duckdb), read_only=True)
    with both.snowflake.connect(step="test") as sf:
        for query in COMPARED:
            on_snowflake = sorted(sf.execute(query.format(db="segmint.")).fetchall(), key=str)
            on_duckdb = sorted(con.execute(query.format(db="")).fetchall(), key=str)
            assert len(on_duckdb) > 50
            assert on_snowflake == on_duckdb, query
    con.close()


def test_the_salt_is_in_no_artifact_log_or_view(both):
    # The salt is in neither SQL text nor dbt's artifacts and logs, on either target.
    for folder in (both.tmp / "target", both.tmp / "target_duck", ROOT / "logs"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert SALT.encode() not in path.read_bytes(), path
    con = duckdb.connect(str(both.duckdb), read_only=True)
    assert con.execute(
        "select count(*) from duckdb_views() where contains(sql, ?)", [SALT]
    ).fetchall() == [(0,)]
    con.close()


def test_the_quality_gates_give_the_same_verdicts_on_snowflake(both):
    """Every suite, validated by Great Expectations in Snowflake (snowflake-sqlalchemy), gives
    the verdicts, metrics and failing counts it gives on DuckDB, and records them there."""
    on_snowflake, on_duckdb = both.quality["snowflake"], both.quality["duckdb"]
    assert [r.suite.name for r in on_snowflake] == [r.suite.name for r in on_duckdb]
    checked = 0
    for sf, duck in zip(on_snowflake, on_duckdb, strict=True):
        assert (sf.rows, sf.skipped) == (duck.rows, duck.skipped), duck.suite.name
        assert len(sf.outcomes) == len(duck.outcomes), duck.suite.name
        for a, b in zip(sf.outcomes, duck.outcomes, strict=True):
            label = f"{b.suite}.{b.expectation}"
            assert (a.expectation, a.error) == (b.expectation, b.error), label
            assert a.success == b.success, label
            assert a.unexpected_count == b.unexpected_count, label
            if b.metric_value is None:
                assert a.metric_value is None, label
            else:
                assert a.metric_value == pytest.approx(b.metric_value, rel=1e-6), label
            checked += 1
    assert checked > 50
    assert any(not o.success for r in on_duckdb for o in r.outcomes)  # some verdicts fail
    query = "select count(*), count(observed_value) from quality.expectation_observations"
    with both.snowflake.connect(step="test") as sf:
        recorded = sf.execute(query).fetchall()
    with duckdb.connect(str(both.duckdb), read_only=True) as con:
        assert recorded == con.execute(query).fetchall()


def test_history_is_kept_in_permanent_tables_on_snowflake(both):
    """dbt-snowflake makes tables transient (no Fail-safe) by default: fine for what each
    run rebuilds, not for history that cannot be rebuilt."""
    run = both.tmp / "target" / "run" / "segmint"

    def created(name: str) -> str:
        (path,) = [p for p in run.rglob(f"{name}.sql")]
        return " ".join(path.read_text().lower().split())

    for permanent in ("snap_customer_segments", "int_identity__customer_id_history",
                      "experiment_assignments"):  # fmt: skip
        assert "create or replace table" in created(permanent) or "create table" in created(
            permanent
        ), permanent
        assert "transient" not in created(permanent), permanent
    assert "create or replace transient table" in created("dim_customers")


def test_python_steps_write_the_same_rows_on_snowflake(both):
    """Ticket tone, clustering and predictions: the same rows in both warehouses, and the
    models reading them (SQL scoring of the clusters, prediction staging) agree too."""
    assert both.tones["snowflake"] == both.tones["duckdb"]
    assert both.tones["duckdb"].scored > 20
    for name in ("snowflake", "duckdb"):
        assert both.clustering[name].skipped is None
    assert both.clustering["snowflake"].result.run["k"] == both.clustering["duckdb"].result.run["k"]
    assert both.predictions["snowflake"].skipped == both.predictions["duckdb"].skipped
    con = duckdb.connect(str(both.duckdb), read_only=True)
    with both.snowflake.connect(step="test") as sf:
        for query in ML_COMPARED:
            on_snowflake = sf.execute(query.format(db="segmint.")).df()
            on_duckdb = con.execute(query.format(db="")).df()
            assert len(on_duckdb) > 20, query
            pd.testing.assert_frame_equal(
                _normalised(on_snowflake), _normalised(on_duckdb), check_dtype=False, rtol=1e-6
            )
    con.close()


def test_the_crms_hold_the_same_after_a_sync_from_snowflake(both):
    """The tags synced from Snowflake reach the CRMs exactly as those synced from DuckDB, and
    the sync's state and audit tables were written in Snowflake."""
    on_snowflake, snowflake_reports = both.crms["snowflake"]
    on_duckdb, duckdb_reports = both.crms["duckdb"]
    assert on_snowflake == on_duckdb
    tagged = [c for c in on_duckdb["hubspot"].values() if c.get("segmint_segments")]
    assert len(tagged) > 20
    for name, report in duckdb_reports.items():
        if report is None:
            continue
        assert snowflake_reports[name].plan.summary() == report.plan.summary(), name
        assert snowflake_reports[name].succeeded == report.succeeded > 0, name
    with both.snowflake.connect(step="test") as sf:
        synced = sf.execute(
            "select destination, count(*) from sync.synced_records group by 1 order by 1"
        ).fetchall()
        audited = sf.execute("select count(*) from sync.sync_runs").fetchone()[0]
    con = duckdb.connect(str(both.duckdb), read_only=True)
    assert (
        synced
        == con.execute(
            "select destination, count(*) from sync.synced_records group by 1 order by 1"
        ).fetchall()
    )
    assert audited == con.execute("select count(*) from sync.sync_runs").fetchone()[0] > 0
    con.close()


def _normalised(frame: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    frame = frame.sort_values(by or list(frame.columns[:1])).reset_index(drop=True)
    return frame.astype({c: float for c in frame.select_dtypes("number").columns})


# Seeds, models and the snapshot, in DAG order, without dbt's tests (see the module doc).
BUILD_WITHOUT_TESTS = [
    ("seed",),
    ("build", "--exclude", "resource_type:test", "resource_type:unit_test", "resource_type:seed"),
]

# A global holdout on both targets: every customer gets a hash arm, which must be the same.
HOLDOUT = "global_holdout_share: 0.3"

# The models that read what the Python steps wrote (schema ml).
ML_READERS = ("customer_nearest_centroid", "stg_ml__customer_clusters",
              "stg_ml__customer_predictions")  # fmt: skip

ML_COMPARED = [
    "select ticket_id, text_hash, compound_score, tone, model from {db}enrichment.ticket_tones",
    "select customer_id, segment_id, segment_name, round(confidence, 6) as confidence, "
    "reason_codes from {db}ml.customer_clusters",
    "select customer_id, segment_id, round(distance, 6) as distance "
    "from {db}marts.customer_nearest_centroid",
    "select customer_id, frequency, recency_weeks, tenure_weeks, "
    "round(probability_alive, 6) as probability_alive, "
    "round(predicted_clv, 4) as predicted_clv from {db}ml.customer_predictions",
    "select customer_id, predicted_clv_percentile from {db}staging.stg_ml__customer_predictions",
]

COMPARED = [
    "select contact_id, email, email_hash, phone, country_code, date_of_birth, updated_at "
    "from {db}staging.stg_crm__contacts",
    "select order_id, shop_account_id, email, ordered_at, order_status, total_amount, "
    "discount_amount, is_discounted from {db}staging.stg_shop__orders",
    "select event_id, event_type, occurred_at, country_code, utm_source "
    "from {db}staging.stg_web__events",
    "select customer_id, recency_days, frequency, monetary, r_score, f_score, m_score, "
    "rfm_segment from {db}marts.customer_rfm",
    "select session_id, anonymous_id, customer_id, event_count, duration_seconds, "
    "is_bounce, channel_group from {db}marts.fct_sessions",
    "select customer_id, sessions_90d, product_views_30d, lifecycle_stage, "
    "round(engagement_score, 6) from {db}marts.customer_behavior",
    "select membership_id, customer_id, segment_key from {db}marts.customer_segments",
    "select assignment_id, arm, assignment_fraction, entry_date "
    "from {db}marts.experiment_assignments",
]


def _daily_job(target: str, landing: Path, root: Path, port: int):
    """The daily job's assets and checks, materialized in process with the resources the code
    location builds for the target (orchestration.defs.resources.build_resources), as
    `segmint run`, the UI or a schedule would run them; the CRMs are an emulator."""
    import dagster as dg

    from orchestration.defs.dbt import segmint_dbt_assets
    from orchestration.defs.enrichment import ticket_tones
    from orchestration.defs.ingestion import raw_tables
    from orchestration.defs.ml import customer_clustering, customer_predictions, experiment_plots
    from orchestration.defs.quality import build_quality_checks
    from orchestration.defs.resources import build_resources
    from orchestration.defs.serving import bi_read_copy, erasure_sweep
    from orchestration.defs.sync import sync_assets
    from segmint.config import Settings

    env = {"SEGMINT_PII_SALT": SALT, "SEGMINT_LANDING_DIR": str(landing),
           "SEGMINT_DUCKDB_PATH": str(root / "w.duckdb"),
           "SEGMINT_BI_DUCKDB_PATH": str(root / "bi" / "w.duckdb"),
           "SEGMINT_DATA_DOCS_DIR": str(root / "docs"), "SEGMINT_ARTIFACTS_DIR": str(root / "ml"),
           "SEGMINT_EXPORT_DIR": str(root / "exports")}  # fmt: skip
    if target == "snowflake":
        env |= {"SEGMINT_DBT_TARGET": "snowflake", "SNOWFLAKE_ACCOUNT": "fakesnow",
                "SNOWFLAKE_USER": "segmint", "SNOWFLAKE_PASSWORD": "x",
                "SNOWFLAKE_DATABASE": "SEGMINT_JOB", "SNOWFLAKE_SCHEMA": "MAIN",
                "SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": str(port),
                "SNOWFLAKE_PROTOCOL": "http", "SNOWFLAKE_THREADS": "1"}  # fmt: skip
    else:
        env["SEGMINT_DBT_TARGET"] = "ci"
    with CrmEmulator() as crm, pytest.MonkeyPatch.context() as patch:
        crm.seed(seed_from_landing(landing))
        env |= {"SEGMINT_HUBSPOT_URL": crm.url, "SEGMINT_HUBSPOT_TOKEN": "token",
                "SEGMINT_SALESFORCE_URL": crm.url, "SEGMINT_SALESFORCE_TOKEN": "token"}  # fmt: skip
        for var in ("SEGMINT_WEBHOOK_URL", "SEGMINT_WEBHOOK_SECRET"):
            patch.delenv(var, raising=False)
        for var, value in env.items():
            patch.setenv(var, value)
        settings = Settings.from_env()
        if target == "snowflake":
            with settings.warehouse().connect(step="test-setup") as sf:
                sf.execute("create database if not exists segmint_job")
        assets = [raw_tables, ticket_tones, *segmint_dbt_assets, customer_clustering,
                  customer_predictions, experiment_plots, *sync_assets, erasure_sweep,
                  bi_read_copy]  # fmt: skip
        checks = build_quality_checks(settings.data_docs_dir, segmint_dbt_assets)
        started = time.perf_counter()
        with dg.instance_for_test() as instance:
            result = dg.materialize([*assets, *checks], resources=build_resources(settings),
                                    instance=instance, raise_on_error=False)  # fmt: skip
        seconds = time.perf_counter() - started
        return result, _crm_state(crm), settings.warehouse(), seconds


def test_the_daily_job_runs_on_snowflake_as_on_duckdb(fakesnow_server, clean_landing, tmp_path):
    """The whole daily job on the snowflake target (the emulator): every step and check
    succeeds, no DuckDB file is made, and the marts, the ML tables and the CRMs end as after
    the same job on DuckDB."""
    from orchestration.run import summarize

    duck = tmp_path / "source.duckdb"
    load(clean_landing.out, duck)
    with duckdb.connect(str(duck), read_only=True) as src:
        raw = {t: src.execute(f"select * exclude ({', '.join(META)}) from raw.{t} "
                              "order by _source_row limit 300").df()
               for t in TABLES}  # fmt: skip
    landing = _landing_files(tmp_path / "landing", raw)
    runs = {name: _daily_job(name, landing, tmp_path / name, fakesnow_server)
            for name in ("snowflake", "duckdb")}  # fmt: skip
    summaries = {name: summarize(run[0]) for name, run in runs.items()}
    print("\njob seconds:", {name: round(run[3], 1) for name, run in runs.items()})
    for name, summary in summaries.items():
        assert summary.success, (name, summary.failed_steps)
        assert summary.checks_failed == [], name
    on_snowflake, on_duckdb = summaries["snowflake"], summaries["duckdb"]
    # The same assets, less the BI read copy (BI tools read Snowflake's marts in place).
    assert set(on_duckdb.materialized) - set(on_snowflake.materialized) <= {"bi/read_copy"}
    assert on_snowflake.checks_passed == on_duckdb.checks_passed > 100
    assert on_snowflake.loaded == on_duckdb.loaded
    assert not (tmp_path / "snowflake" / "w.duckdb").exists()
    assert runs["snowflake"][1] == runs["duckdb"][1]  # the CRMs
    assert len([c for c in runs["duckdb"][1]["hubspot"].values() if c.get("segmint_segments")]) > 20
    snapshot = "select count(*) from snapshots.snap_customer_segments"
    with runs["snowflake"][2].connect(step="test") as sf, runs["duckdb"][2].connect(True) as dk:
        for query in COMPARED:
            a = sorted(sf.execute(query.format(db="")).fetchall(), key=str)
            b = sorted(dk.execute(query.format(db="")).fetchall(), key=str)
            assert len(b) > 20 and a == b, query
        for query in ML_COMPARED:
            a = sf.execute(query.format(db="")).df()
            b = dk.execute(query.format(db="")).df()
            assert len(b) > 20, query
            pd.testing.assert_frame_equal(_normalised(a), _normalised(b), check_dtype=False,
                                          rtol=1e-6)  # fmt: skip
        assert sf.execute(snapshot).fetchall() == dk.execute(snapshot).fetchall()
        assert dk.execute(snapshot).fetchall()[0][0] > 50
