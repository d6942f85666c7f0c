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
from segmint.load import ensure_raw_tables, load
from segmint.predictions import run_predictions
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
SNOWFLAKE_TYPES = {"varchar": "varchar", "bigint": "number(38, 0)", "double": "float"}


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


@dataclass
class BothTargets:
    snowflake: SnowflakeWarehouse
    duckdb: Path
    tmp: Path
    tones: dict
    clustering: dict
    predictions: dict
    crms: dict
    quality: dict


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
    # The raw tables as the loader writes them, on DuckDB first.
    duck = tmp / "w.duckdb"
    load(clean_landing.out, duck)
    con = duckdb.connect(str(duck), read_only=True)
    raw = {t: con.execute(f"select * from raw.{t} order by _source_row limit 300").df()
           for t in TABLES}  # fmt: skip
    con.close()

    snowflake = _snowflake(fakesnow_server)
    with snowflake.connect(step="test-setup") as sf:
        sf.execute("create database if not exists segmint")
        sf.execute("create schema if not exists segmint.raw")
        for table, contract in contracts().items():
            cols = [f"{c.name} {SNOWFLAKE_TYPES[c.sql_type]}" for c in contract.columns]
            cols += ["_load_id varchar", "_source_file varchar", "_source_row number(38, 0)",
                     "_loaded_at timestamp_ntz"]  # fmt: skip
            sf.execute(f"create or replace table segmint.raw.{table} ({', '.join(cols)})")
            # Frames travel as Snowflake loads files: Parquet, PUT, COPY INTO.
            sf.load_frame(f"segmint.raw.{table}", raw[table])
        # What the erasure step keeps (segmint.privacy), read by staging: empty here.
        sf.execute("create schema if not exists segmint.privacy")
        sf.execute(
            "create or replace table segmint.privacy.suppression_list (identifier_type varchar, "
            "identifier_hash varchar, request_id varchar, suppressed_at timestamp_ntz)"
        )

    subset = tmp / "subset.duckdb"
    con = duckdb.connect(str(subset))
    ensure_raw_tables(con)
    for table, frame in raw.items():
        con.register("frame", frame)
        con.execute(f"insert into raw.{table} select * from frame")
        con.unregister("frame")
    con.close()

    def connections():
        return {"snowflake": snowflake.connect(step="ticket_tones"),
                "duckdb": duckdb.connect(str(subset))}  # fmt: skip

    # Step 1, before dbt: ticket tone, written by Python into each warehouse.
    timings: dict[str, float] = {}

    def timed(step: str, name: str, function, *args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            key = f"{step} [{name}]"
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - started

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
                # fakesnow stalls on dollar-quoted comments: no persisted docs there.
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
    crms = {}
    for name, step_con in connections().items():
        with step_con, CrmEmulator() as emulator:
            emulator.seed(seed_from_landing(clean_landing.out))
            environ = {
                "SEGMINT_HUBSPOT_URL": emulator.url, "SEGMINT_HUBSPOT_TOKEN": "token",
                "SEGMINT_SALESFORCE_URL": emulator.url, "SEGMINT_SALESFORCE_TOKEN": "token",
            }  # fmt: skip
            with pytest.MonkeyPatch.context() as patch:  # the clients read the environment
                for var, value in environ.items():
                    patch.setenv(var, value)
                results = timed("crm sync", name, sync_concurrently, step_con,
                                load_destinations(), environ)  # fmt: skip
            assert [r.error for r in results if r.error] == [], name
            crms[name] = (_crm_state(emulator), {r.destination.name: r.report for r in results})
    # Seconds per step on each warehouse (shown with pytest -s; reported in the notes).
    print("\nstep seconds:", {k: round(v, 1) for k, v in sorted(timings.items())})
    return BothTargets(snowflake, subset, tmp, tones, clustering, predictions, crms, quality)


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


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(list(frame.columns[:1])).reset_index(drop=True)
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
