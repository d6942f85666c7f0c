"""The same dbt project on the Snowflake target, against fakesnow's emulation of the wire API.

Snowflake itself cannot run here; fakesnow serves Snowflake's HTTP API on 127.0.0.1 and
dbt-snowflake talks to it as to a real account. Seeds, models and the snapshot run there
(`dbt build` without tests), and staging and the customer marts must give the same rows as on
DuckDB; dbt's unit and data tests run on DuckDB only, since fakesnow cannot create the
qualified temporary tables of unit tests and stalls on some test queries.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import snowflake.connector

from segmint.contracts import TABLES, contracts
from segmint.load import ensure_raw_tables, load

ROOT = Path(__file__).resolve().parents[2]
SALT = "a-test-salt-for-both-warehouses"
SNOWFLAKE_TYPES = {"varchar": "varchar", "bigint": "number(38, 0)", "double": "float"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fakesnow_server():
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "fakesnow"), "-s", "-p", str(port)],
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


def _connect(port: int):
    return snowflake.connector.connect(
        account="fakesnow", user="segmint", password="x", host="127.0.0.1", port=port,
        protocol="http", database="SEGMINT", schema="RAW",
    )  # fmt: skip


def test_staging_builds_on_snowflake_as_on_duckdb(fakesnow_server, clean_landing, tmp_path):
    # The raw tables as the loader writes them, on DuckDB first.
    duck = tmp_path / "w.duckdb"
    load(clean_landing.out, duck)
    con = duckdb.connect(str(duck), read_only=True)
    raw = {t: con.execute(f"select * from raw.{t} order by _source_row limit 300").df()
           for t in TABLES}  # fmt: skip
    con.close()

    sf = _connect(fakesnow_server)
    cur = sf.cursor()
    cur.execute("create database if not exists segmint")
    cur.execute("create schema if not exists segmint.raw")
    for table, contract in contracts().items():
        cols = [f"{c.name} {SNOWFLAKE_TYPES[c.sql_type]}" for c in contract.columns]
        cols += ["_load_id varchar", "_source_file varchar", "_source_row number(38, 0)",
                 "_loaded_at timestamp_ntz"]  # fmt: skip
        cur.execute(f"create or replace table segmint.raw.{table} ({', '.join(cols)})")
        frame = raw[table].astype(object).where(pd.notna(raw[table]), None)
        if len(frame):
            placeholders = ", ".join(["%s"] * len(frame.columns))
            cur.executemany(
                f"insert into segmint.raw.{table} values ({placeholders})",
                [tuple(str(v) if isinstance(v, pd.Timestamp) else v for v in row)
                 for row in frame.itertuples(index=False)],
            )  # fmt: skip
    # What the erasure step keeps (segmint.privacy), read by staging: empty here.
    cur.execute("create schema if not exists segmint.privacy")
    cur.execute(
        "create or replace table segmint.privacy.suppression_list (identifier_type varchar, "
        "identifier_hash varchar, request_id varchar, suppressed_at timestamp_ntz)"
    )
    sf.close()

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
    dbt = str(Path(sys.executable).parent / "dbt")
    seed = [dbt, "seed", "--select", "countries", "--project-dir", str(ROOT),
            "--profiles-dir", str(ROOT), "--target", "snowflake",
            "--target-path", str(tmp_path / "target")]  # fmt: skip
    refused = subprocess.run(seed, env=env, capture_output=True, text=True, timeout=180)
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

    for command in BUILD_WITHOUT_TESTS:
        step = subprocess.run(
            [str(Path(sys.executable).parent / "dbt"), *command, "--project-dir", str(ROOT),
             "--profiles-dir", str(ROOT), "--target", "snowflake",
             "--target-path", str(tmp_path / "target"),
             # fakesnow stalls on dollar-quoted comments: no persisted docs there.
             "--vars", "{persist_docs: false, " + HOLDOUT + "}"],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert step.returncode == 0, step.stdout[-4000:]

    # The same raw rows through the DuckDB target, for comparison.
    subset = tmp_path / "subset.duckdb"
    con = duckdb.connect(str(subset))
    ensure_raw_tables(con)
    for table, frame in raw.items():
        con.register("frame", frame)
        con.execute(f"insert into raw.{table} select * from frame")
        con.unregister("frame")
    con.close()
    for command in BUILD_WITHOUT_TESTS:
        step = subprocess.run(
            [str(Path(sys.executable).parent / "dbt"), *command, "--project-dir", str(ROOT),
             "--profiles-dir", str(ROOT), "--target", "ci",
             "--target-path", str(tmp_path / "target_duck"), "--vars", "{" + HOLDOUT + "}"],
            env={**os.environ, "SEGMINT_DUCKDB_PATH": str(subset), "SEGMINT_PII_SALT": SALT},
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert step.returncode == 0, step.stdout[-4000:]

    # The salt is in neither SQL text nor dbt's artifacts and logs, on either target.
    for folder in (tmp_path / "target", tmp_path / "target_duck", ROOT / "logs"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert SALT.encode() not in path.read_bytes(), path
    con = duckdb.connect(str(subset), read_only=True)
    assert con.execute(
        "select count(*) from duckdb_views() where contains(sql, ?)", [SALT]
    ).fetchall() == [(0,)]
    con.close()

    sf = _connect(fakesnow_server)
    con = duckdb.connect(str(subset), read_only=True)
    for query in COMPARED:
        cur = sf.cursor()
        cur.execute(query.format(db="segmint."))
        on_snowflake = sorted(cur.fetchall(), key=str)
        on_duckdb = sorted(con.execute(query.format(db="")).fetchall(), key=str)
        assert len(on_duckdb) > 50
        assert on_snowflake == on_duckdb, query
    sf.close()
    con.close()


# Seeds, models and the snapshot, in DAG order, without dbt's tests (see the module doc).
BUILD_WITHOUT_TESTS = [
    ("seed",),
    ("build", "--exclude", "resource_type:test", "resource_type:unit_test", "resource_type:seed"),
]

# A global holdout on both targets: every customer gets a hash arm, which must be the same.
HOLDOUT = "global_holdout_share: 0.3"

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
