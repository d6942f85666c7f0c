"""The daily job on the Snowflake target, against fakesnow's emulation of the wire API.

Snowflake itself cannot run here; fakesnow serves Snowflake's HTTP API on 127.0.0.1
(tests/fakesnow_server.py, with the emulator's gaps mended) and dbt-snowflake and segmint's
Python steps talk to it as to a real account. The whole job (load, erasure, ticket tone,
dbt, the quality gates, clustering, predictions, the snapshot, the CRM sync) runs twice on
each target with the code location's resources: the second time after new landing files and
an erasure request arrive, so incremental models, the snapshot's second run and the reuse of
the stored model are covered. After each run both warehouses must hold the same rows.
"""

import contextlib
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from segmint.contracts import TABLES, contracts
from segmint.evaluate import blocking_recall, evaluate_identity, evaluate_segments, match_threshold
from segmint.load import load
from segmint.privacy import audit, hash_identifier
from segmint.snowflake import SnowflakeWarehouse
from segmint.sync.emulator import CrmEmulator, seed_from_landing

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


def _landing_files(folder: Path, raw: dict[str, pd.DataFrame], suffix: str = "") -> Path:
    """One landing file per table, the formats taking turns, each with damaged rows: a
    required value emptied, and a line the reader cannot take (CSV and JSON Lines)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (table, frame) in enumerate(raw.items()):
        frame = frame.copy()
        required = contracts()[table].required
        if len(frame) and required:
            frame.loc[frame.index[0], required[0]] = None
        kind = FORMATS[i % len(FORMATS)]
        path = folder / f"{table}{suffix}.{kind}"
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


def _dbt(command, target: str, env: dict, target_path: Path, variables: str):
    return subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *command, "--project-dir", str(ROOT),
         "--profiles-dir", str(ROOT), "--target", target, "--target-path", str(target_path),
         "--vars", "{" + variables + "}"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


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


def _normalised(frame: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    frame = frame.sort_values(by or list(frame.columns[:1])).reset_index(drop=True)
    return frame.astype({c: float for c in frame.select_dtypes("number").columns})


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
    "round(engagement_score, 6) as engagement_score from {db}marts.customer_behavior",
    "select membership_id, customer_id, segment_key from {db}marts.customer_segments",
    "select assignment_id, arm, assignment_fraction, entry_date "
    "from {db}marts.experiment_assignments",
]


class _JobTarget:
    """One warehouse target of the daily job, run as `segmint run`, the UI or a schedule
    would run it: every asset and check, with the resources the code location builds for
    the target (orchestration.defs.resources.build_resources). Its CRMs are an emulator
    that keeps its state from one run to the next."""

    def __init__(self, target: str, landing: Path, root: Path, port: int, crm: CrmEmulator):
        self.target, self.crm = target, crm
        self.env = {"SEGMINT_PII_SALT": SALT, "SEGMINT_LANDING_DIR": str(landing),
                    "SEGMINT_DUCKDB_PATH": str(root / "w.duckdb"),
                    "SEGMINT_BI_DUCKDB_PATH": str(root / "bi" / "w.duckdb"),
                    "SEGMINT_DATA_DOCS_DIR": str(root / "docs"),
                    "SEGMINT_ARTIFACTS_DIR": str(root / "ml"),
                    "SEGMINT_EXPORT_DIR": str(root / "exports"),
                    "SEGMINT_HUBSPOT_URL": crm.url, "SEGMINT_HUBSPOT_TOKEN": "token",
                    "SEGMINT_SALESFORCE_URL": crm.url,
                    "SEGMINT_SALESFORCE_TOKEN": "token"}  # fmt: skip
        if target == "snowflake":
            self.env |= {"SEGMINT_DBT_TARGET": "snowflake", "SNOWFLAKE_ACCOUNT": "fakesnow",
                         "SNOWFLAKE_USER": "segmint", "SNOWFLAKE_PASSWORD": "x",
                         "SNOWFLAKE_DATABASE": "SEGMINT_JOB", "SNOWFLAKE_SCHEMA": "MAIN",
                         "SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": str(port),
                         "SNOWFLAKE_PROTOCOL": "http", "SNOWFLAKE_THREADS": "1"}  # fmt: skip
        else:
            self.env["SEGMINT_DBT_TARGET"] = "ci"

    @contextlib.contextmanager
    def settings(self):
        from segmint.config import Settings

        with pytest.MonkeyPatch.context() as patch:
            for var in ("SEGMINT_WEBHOOK_URL", "SEGMINT_WEBHOOK_SECRET"):
                patch.delenv(var, raising=False)
            for var, value in self.env.items():
                patch.setenv(var, value)
            yield Settings.from_env()

    def run(self):
        import dagster as dg

        from orchestration.defs.dbt import segmint_dbt_assets
        from orchestration.defs.enrichment import ticket_tones
        from orchestration.defs.ingestion import raw_tables
        from orchestration.defs.ml import (
            customer_clustering,
            customer_predictions,
            experiment_plots,
        )
        from orchestration.defs.quality import build_quality_checks
        from orchestration.defs.resources import build_resources
        from orchestration.defs.serving import bi_read_copy, erasure_sweep
        from orchestration.defs.sync import sync_assets
        from orchestration.run import summarize

        with self.settings() as settings:
            if self.target == "snowflake":
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
            self.warehouse = settings.warehouse()
            return summarize(result), time.perf_counter() - started


@dataclass
class JobRuns:
    """What the two runs of the daily job on each target left behind."""

    summaries: dict  # target -> [first run, second run]
    seconds: dict  # target -> [first run, second run]
    crms: dict  # target -> [CRM state after each run]
    warehouses: dict  # target -> its warehouse object
    compared: list  # (run, query, rows on Snowflake, rows on DuckDB)
    email: str  # the person whose erasure request arrives with the second run
    before: dict  # target -> the audit of that email after the first run
    new_rows: dict  # table -> rows in the second run's new files
    dbt_runs: list  # dbt's `run` folders written during the runs
    truth: Path
    root: Path


def _compare(run: int, sf, dk) -> list:
    """The rows both warehouses hold for each compared query, ordered alike."""
    out = []
    queries = [*COMPARED, *ML_COMPARED, SNAPSHOT, OBSERVATIONS, COUNTS]
    for query in queries:
        a = _comparable(sf.execute(query.format(db="")).df())
        b = _comparable(dk.execute(query.format(db="")).df())
        out.append((run, query, _normalised(a[list(b.columns)], by=list(b.columns)),
                    _normalised(b, by=list(b.columns))))  # fmt: skip
    return out


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as both warehouses' drivers can give them: lower-case names, dates and times
    as pandas timestamps, decimals as floats (Snowflake's NUMBER arrives as Decimal)."""
    frame = frame.copy()
    frame.columns = [c.lower() for c in frame.columns]
    for column in frame.columns:
        values = frame[column].dropna()
        first = values.iloc[0] if len(values) else None
        if pd.api.types.is_datetime64_any_dtype(frame[column]) or isinstance(first, dt.date):
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
        elif isinstance(first, Decimal):
            frame[column] = frame[column].astype(float)
    return frame


@pytest.fixture(scope="module")
def jobs(fakesnow_server, clean_landing, tmp_path_factory) -> JobRuns:
    """The daily job run twice on each target on the same landing folder: first on a subset
    of the generator's rows in every format the loader reads, with damaged rows; then again
    after new files arrive (more rows of every table, incremental models and the snapshot's
    second run) with an erasure request."""
    tmp = tmp_path_factory.mktemp("snowflake_job")
    source = tmp / "source.duckdb"
    load(clean_landing.out, source)
    with duckdb.connect(str(source), read_only=True) as src:

        def rows(offset: int, limit: int) -> dict[str, pd.DataFrame]:
            return {t: src.execute(f"select * exclude ({', '.join(META)}) from raw.{t} "
                                   f"order by _source_row limit {limit} offset {offset}").df()
                    for t in TABLES}  # fmt: skip

        first = rows(0, 300)
        second = {t: f for t, f in rows(300, 40).items() if len(f)}
    landing = _landing_files(tmp / "landing", first)
    started = time.time()
    summaries, seconds, crms, compared = {}, {}, {}, []
    with contextlib.ExitStack() as stack:
        targets = {}
        for name in ("snowflake", "duckdb"):
            crm = stack.enter_context(CrmEmulator())
            crm.seed(seed_from_landing(landing))
            targets[name] = _JobTarget(name, landing, tmp / name, fakesnow_server, crm)

        def run_all(run: int) -> None:
            for name, target in targets.items():
                summary, took = target.run()
                summaries.setdefault(name, []).append(summary)
                seconds.setdefault(name, []).append(round(took, 1))
                crms.setdefault(name, []).append(_crm_state(target.crm))
            with (targets["snowflake"].warehouse.connect(step="test") as sf,
                  targets["duckdb"].warehouse.connect(True) as dk):  # fmt: skip
                compared.extend(_compare(run, sf, dk))

        run_all(1)
        # Between the runs: the person whose erasure request arrives, found in the CRM sync,
        # and where each warehouse holds their email before.
        with targets["duckdb"].warehouse.connect(True) as dk:
            (email,) = dk.execute(
                "select min(record_key) from sync.synced_records "
                "where destination = 'hubspot' and key_type = 'email'"
            ).fetchone()
        before = {}
        for name, target in targets.items():
            with target.warehouse.connect(step="test") as con:
                before[name] = audit(con, {"email": email})
        _landing_files(landing, second, suffix="_run2")
        (landing / "erasure_requests_dpo.csv").write_text(
            f"request_id,email,requested_at\nera-job-1,{email.upper()},2026-06-02T09:00:00Z\n"
        )
        run_all(2)
    print("\njob seconds:", seconds)
    dbt_runs = [p for p in (ROOT / "target").rglob("run") if p.is_dir()
                and p.stat().st_mtime >= started]  # fmt: skip
    return JobRuns(summaries, seconds, crms, {n: t.warehouse for n, t in targets.items()},
                   compared, email, before, {t: len(f) for t, f in second.items()}, dbt_runs,
                   clean_landing.out / "truth", tmp)  # fmt: skip


def test_the_daily_job_runs_twice_on_snowflake_as_on_duckdb(jobs):
    """Both runs of the whole daily job succeed on the snowflake target (the emulator), every
    step and check, with no DuckDB file made; after each run the marts, the ML tables, the
    snapshot, the gates' observations and the CRMs are as after the same runs on DuckDB."""
    for name, runs in jobs.summaries.items():
        for run, summary in enumerate(runs, 1):
            assert summary.success, (name, run, summary.failed_steps)
            assert summary.checks_failed == [], (name, run)
    for run in (0, 1):
        on_snowflake, on_duckdb = jobs.summaries["snowflake"][run], jobs.summaries["duckdb"][run]
        # The same assets, less the BI read copy (BI tools read Snowflake's marts in place).
        assert set(on_duckdb.materialized) - set(on_snowflake.materialized) <= {"bi/read_copy"}
        assert on_snowflake.checks_passed == on_duckdb.checks_passed > 100
        assert on_snowflake.loaded == on_duckdb.loaded
        assert jobs.crms["snowflake"][run] == jobs.crms["duckdb"][run]
    assert not (jobs.root / "snowflake" / "w.duckdb").exists()
    tagged = [c for c in jobs.crms["duckdb"][0]["hubspot"].values() if c.get("segmint_segments")]
    assert len(tagged) > 20
    assert {run for run, *_ in jobs.compared} == {1, 2}
    for run, query, on_snowflake, on_duckdb in jobs.compared:
        assert len(on_duckdb) > (0 if query == COUNTS else 20), (run, query)
        pd.testing.assert_frame_equal(on_snowflake, on_duckdb, check_dtype=False, rtol=1e-6,
                                      obj=f"run {run}: {query}")  # fmt: skip


def test_the_second_run_adds_only_the_new_files_and_builds_on_the_first(jobs):
    """The second run loads the new files alone (the first run's are known by checksum), the
    incremental models and the snapshot take the new rows in, and clustering reuses the
    model the first run stored in the warehouse, on both targets alike."""
    for name in ("snowflake", "duckdb"):
        first, second = jobs.summaries[name]
        for i, (table, rows) in enumerate(jobs.new_rows.items()):
            # Each new file holds its rows and, in CSV and JSON Lines, a line the reader
            # cannot take (quarantined); nothing of the first run's files again.
            unreadable = FORMATS[i % len(FORMATS)] != "parquet"
            assert sum(second.loaded[table]) == rows + unreadable, (name, table)
            assert first.loaded[table][0] > 0, (name, table)
    runs = "select preprocessing from ml.segmentation_runs order by trained_at"
    stored = "select count(distinct run_id), count(*) from ml.model_artifacts"
    files = "select count(*), count(distinct checksum) from raw.loaded_files"
    ends = {}
    for name, warehouse in jobs.warehouses.items():
        with warehouse.connect(step="test") as con:
            ends[name] = [con.execute(q).fetchall() for q in (runs, stored, files)]
    assert ends["snowflake"] == ends["duckdb"]
    preprocessing, [(stored_runs, _)], [(loaded, distinct)] = ends["duckdb"]
    assert [p for (p,) in preprocessing] == ["fitted", "kept from the previous run"]
    assert stored_runs == 2
    assert loaded == distinct == len(TABLES) + len(jobs.new_rows) + 1  # the DPO's request
    counted = {run: frame.iloc[0] for run, query, _, frame in jobs.compared if query == COUNTS}
    assert counted[2]["events"] > counted[1]["events"] > 0
    assert counted[2]["orders"] > counted[1]["orders"] > 0
    # Memberships that ended were closed by the snapshot's second run, not dropped.
    assert counted[2]["closed_memberships"] > counted[1]["closed_memberships"] == 0


_EXPORT_FILE = re.compile(r"\d{8}t\d{6}-[0-9a-f]+")


def test_an_erasure_in_the_second_run_erases_the_same_rows_on_snowflake(jobs):
    """The erasure request that arrives with the second run is carried out by the job on
    each target: the same rows go from the same tables, the CRMs lose the person alike, the
    suppression list holds the hash, and no table or view still holds the email."""
    before = {name: {(t.where.lower(), t.rows) for t in traces}
              for name, traces in jobs.before.items()}  # fmt: skip
    assert before["snowflake"] == before["duckdb"] and len(before["duckdb"]) > 5
    hashed = hash_identifier(SALT, jobs.email)
    logged = {}
    for name, warehouse in jobs.warehouses.items():
        with warehouse.connect(step="test") as con:
            assert audit(con, {"email": jobs.email}) == [], name
            assert con.execute(
                "select request_id from privacy.suppression_list where identifier_hash = ?",
                [hashed],
            ).fetchall() == [("era-job-1",)], name
            # Rows removed for a batch are logged under every request and customer of it.
            rows = con.execute(
                "select lower(target), action, rows_affected from privacy"
                ".erasure_log where request_id like '%era-job-1%'"
            ).fetchall()
            # Export files are named by the time they were written: the names differ.
            logged[name] = sorted((_EXPORT_FILE.sub("<export>", t), a, n) for t, a, n in rows)
    assert logged["snowflake"] == logged["duckdb"]
    done = {(target.split(".")[0], action) for target, action, rows in logged["duckdb"] if rows}
    assert {("raw", "deleted"), ("marts", "deleted"), ("hubspot", "deleted")} <= done, logged
    for name, states in jobs.crms.items():
        assert jobs.email not in states[1]["hubspot"], name
        assert jobs.email in states[0]["hubspot"], name


def test_evaluate_and_the_run_summary_read_snowflake_as_they_read_duckdb(jobs):
    """`segmint evaluate` and the demo's summary on the snowflake target: the same scores
    and counts as from the DuckDB file, read from Snowflake (the truth stays local)."""
    from segmint.cli import _segment_sizes, _warehouse_totals

    targets = (jobs.warehouses["snowflake"], jobs.warehouses["duckdb"])
    identity = [evaluate_identity(t, jobs.truth) for t in targets]
    assert identity[0] == identity[1]
    assert identity[1].records > 500 and identity[1].customers > 50
    assert blocking_recall(targets[0], jobs.truth / "contacts.parquet") == blocking_recall(
        targets[1], jobs.truth / "contacts.parquet"
    )
    thresholds = [match_threshold(t) for t in targets]
    assert thresholds[1] is not None and thresholds[0].keys() == thresholds[1].keys()
    for key, value in thresholds[1].items():
        if isinstance(value, float):
            assert float(thresholds[0][key]) == pytest.approx(value, rel=1e-9), key
        else:
            assert thresholds[0][key] == value, key
    segments = [evaluate_segments(t, jobs.truth) for t in targets]
    assert segments[0].customers == segments[1].customers > 50
    assert segments[0].adjusted_rand_index == pytest.approx(segments[1].adjusted_rand_index)
    assert _warehouse_totals(targets[0]) == _warehouse_totals(targets[1])
    assert _warehouse_totals(targets[1])[1] > 50
    assert _segment_sizes(targets[0]) == _segment_sizes(targets[1]) != []


def test_history_is_kept_in_permanent_tables_on_snowflake(jobs):
    """dbt-snowflake makes tables transient (no Fail-safe) by default: fine for what each
    run rebuilds, not for history that cannot be rebuilt."""
    sent: dict[str, list[str]] = {}
    for folder in jobs.dbt_runs:
        for path in folder.rglob("*.sql"):
            sent.setdefault(path.stem, []).append(" ".join(path.read_text().lower().split()))
    on_snowflake = {name: [sql for sql in texts if "transient" in sql or "merge into" in sql
                           or "create or replace table" in sql]
                    for name, texts in sent.items()}  # fmt: skip
    assert any("create or replace transient table" in sql for sql in on_snowflake["dim_customers"])
    for permanent in ("snap_customer_segments", "int_identity__customer_id_history",
                      "experiment_assignments"):  # fmt: skip
        assert on_snowflake[permanent], permanent
        assert not any("transient" in sql for sql in on_snowflake[permanent]), permanent


def test_the_salt_is_in_no_artifact_log_or_view(jobs):
    # The salt is in neither SQL text nor dbt's artifacts and logs, on either target.
    for folder in (*{p.parent for p in jobs.dbt_runs}, ROOT / "logs"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert SALT.encode() not in path.read_bytes(), path
    with jobs.warehouses["duckdb"].connect(True) as con:
        assert con.execute(
            "select count(*) from duckdb_views() where contains(sql, ?)", [SALT]
        ).fetchall() == [(0,)]


def test_dbt_refuses_to_start_on_snowflake_without_a_stored_salt(fakesnow_server, tmp_path):
    """The salt is stored in the warehouse once (`segmint privacy store-salt`), sent as a
    bound parameter, and dbt reads it there. Without it, and with the development salt,
    dbt and store-salt refuse to start."""
    with _snowflake(fakesnow_server).connect(step="test-setup") as sf:
        sf.execute("create database if not exists segmint_salt")
    env = {**os.environ, "SEGMINT_DBT_TARGET": "snowflake", "SNOWFLAKE_ACCOUNT": "fakesnow",
           "SNOWFLAKE_USER": "segmint", "SNOWFLAKE_PASSWORD": "x",
           "SNOWFLAKE_DATABASE": "SEGMINT_SALT", "SNOWFLAKE_SCHEMA": "MAIN",
           "SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": str(fakesnow_server),
           "SNOWFLAKE_PROTOCOL": "http", "SNOWFLAKE_THREADS": "1"}  # fmt: skip
    env.pop("SEGMINT_PII_SALT", None)
    refused = _dbt(["seed", "--select", "countries"], "snowflake", env, tmp_path / "target", "")
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
    seeded = _dbt(["seed", "--select", "countries"], "snowflake", env, tmp_path / "target", "")
    assert seeded.returncode == 0, seeded.stdout[-3000:]


SNAPSHOT = ("select membership_id, customer_id, segment_key, dbt_valid_to is null as is_current "
            "from {db}snapshots.snap_customer_segments")  # fmt: skip
OBSERVATIONS = ("select suite, expectation, round(observed_value, 6) as observed_value, success "
                "from {db}quality.expectation_observations")  # fmt: skip
COUNTS = ("select (select count(*) from {db}marts.fct_web_events) as events, "
          "(select count(*) from {db}marts.fct_orders) as orders, "
          "(select count(*) from {db}snapshots.snap_customer_segments "
          " where dbt_valid_to is not null) as closed_memberships")  # fmt: skip
