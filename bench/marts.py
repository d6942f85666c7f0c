"""Customer-mart benchmarks (not tests; the figures go to bench/results/marts.md).

    python bench/marts.py rfm --orders 10000000 --customers 1000000
    python bench/marts.py incremental --customers 20000

rfm: the RFM mart (dbt models int_segments__as_of, int_segments__customer_orders and
customer_rfm) on N synthetic orders, against the same computation written as one DuckDB
query and as a pandas implementation, in one run on one warehouse file. All three results
are compared row by row before any figure is reported.

incremental: a warehouse built from generated data, then 1% new events loaded (scattered:
anywhere in history, half joining existing sessions; appended: the next day's, on devices
seen before), then the event and session models
(stg_web__events, fct_web_events, fct_sessions) run incrementally, against the same models with
--full-refresh on a copy of the same warehouse.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import dbt_models

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work" / "marts"


def dbt(warehouse: Path, *args: str) -> tuple[float, dict[str, float]]:
    """Run dbt; return wall seconds and each model's execution time from run_results."""
    return dbt_models(warehouse, WORK / "target", *args)


# ---------------------------------------------------------------------------------------
# RFM

HAND_WRITTEN_RFM = """
create or replace table bench_rfm_sql as
with as_of as (select max(order_date) as d from marts.fct_orders),
buyers as (
    select o.customer_id,
           date_diff('day', max(o.order_date), any_value(as_of.d)) as recency_days,
           count(*) as frequency,
           sum(cast(o.total_amount as double) * fx.rate_to_reporting) as monetary
    from marts.fct_orders o
    cross join as_of
    join reference.fx_rates fx using (currency_code)
    join marts.dim_customers c on c.customer_id = o.customer_id and not c.is_erased
    where o.is_completed and o.order_date <= as_of.d
    group by o.customer_id
),
scored as (
    select *,
        count(*) over () as n,
        least(5, 1 + floor(5.0 * (rank() over (order by recency_days desc) - 1) / n)) as r,
        least(5, 1 + floor(5.0 * (rank() over (order by frequency) - 1) / n)) as f,
        least(5, 1 + floor(5.0 * (rank() over (order by monetary) - 1) / n)) as m
    from buyers
)
select c.customer_id, s.recency_days, coalesce(s.frequency, 0) as frequency,
       cast(coalesce(s.monetary, 0) as decimal(18, 2)) as monetary,
       s.r::int as r_score, s.f::int as f_score, s.m::int as m_score,
       coalesce(seg.rfm_segment, 'Prospects') as rfm_segment
from marts.dim_customers c
left join scored s using (customer_id)
left join reference.rfm_segments seg
  on seg.r_score = s.r and seg.fm_score = floor((s.f + s.m + 1) / 2.0)
where not c.is_erased
"""


def pandas_rfm(orders: pd.DataFrame, customers: pd.DataFrame, fx: pd.DataFrame,
               segments: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    as_of = orders["order_date"].max()
    done = orders[orders["is_completed"] & (orders["order_date"] <= as_of)]
    rate = done["currency_code"].map(fx.set_index("currency_code")["rate_to_reporting"])
    done = done.assign(amount=done["total_amount"].astype(float) * rate)
    live = customers.loc[~customers["is_erased"], ["customer_id"]]
    done = done[done["customer_id"].isin(live["customer_id"])]
    buyers = done.groupby("customer_id").agg(
        last=("order_date", "max"), frequency=("order_id", "size"), monetary=("amount", "sum")
    )
    buyers["recency_days"] = (as_of - buyers["last"]).dt.days
    n = len(buyers)
    for score, column, ascending in (("r", "recency_days", False), ("f", "frequency", True),
                                     ("m", "monetary", True)):  # fmt: skip
        worse = buyers[column].rank(method="min", ascending=ascending) - 1
        buyers[f"{score}_score"] = np.minimum(5, 1 + np.floor(5.0 * worse / n)).astype(int)
    buyers["fm_score"] = np.floor((buyers.f_score + buyers.m_score + 1) / 2).astype(int)
    out = live.merge(buyers.reset_index(), on="customer_id", how="left")
    out = out.merge(segments, left_on=["r_score", "fm_score"], right_on=["r_score", "fm_score"],
                    how="left")  # fmt: skip
    out["rfm_segment"] = out["rfm_segment"].fillna("Prospects")
    return out


def synthesize_orders(warehouse: Path, n_orders: int, n_customers: int, seed: int) -> None:
    con = duckdb.connect(str(warehouse))
    con.execute(f"select setseed({(seed % 1000) / 1000})")
    con.execute("create schema if not exists marts")
    con.execute(f"""
        create or replace table marts.dim_customers as
        select 'cus_' || lpad(cast(i as varchar), 9, '0') as customer_id,
               random() < 0.002 as is_erased
        from range({n_customers}) t(i)
    """)
    con.execute(f"""
        create or replace table marts.fct_orders as
        with raw as (
            select i,
                   -- a skewed number of orders per customer: a few customers buy a lot
                   cast(floor({n_customers} * pow(random(), 1.6)) as bigint) as c,
                   timestamp '2024-11-01'
                   + to_seconds(cast(random() * 730 * 86400 as bigint)) as ts,
                   random() as s, random() as k, random() as a
            from range({n_orders}) t(i)
        )
        select 'ord_' || cast(i as varchar) as order_id,
               'cus_' || lpad(cast(c as varchar), 9, '0') as customer_id,
               ts as ordered_at, cast(ts as date) as order_date,
               case when s < 0.92 then 'completed' when s < 0.95 then 'cancelled'
                    else 'refunded' end as order_status,
               s < 0.92 as is_completed,
               ['USD', 'EUR', 'GBP', 'CAD'][1 + cast(floor(k * 4) as int)] as currency_code,
               cast(round(5 + exp(3.5 + 1.2 * a), 2) as decimal(18, 2)) as total_amount,
               cast(0 as decimal(18, 2)) as discount_amount, false as is_discounted,
               'web' as sales_channel, cast(1 as bigint) as line_count,
               cast(1 as bigint) as unit_count
        from raw
    """)
    con.close()


def bench_rfm(n_orders: int, n_customers: int, seed: int) -> str:
    warehouse = WORK / "rfm.duckdb"
    warehouse.unlink(missing_ok=True)
    synthesize_orders(warehouse, n_orders, n_customers, seed)
    dbt(warehouse, "seed", "--select", "fx_rates", "rfm_segments")
    models = ["int_segments__as_of", "int_segments__customer_orders", "customer_rfm"]
    dbt_wall, dbt_models = dbt(warehouse, "run", "--select", *models)
    dbt_sql = sum(dbt_models[m] for m in models)

    con = duckdb.connect(str(warehouse))
    started = time.perf_counter()
    con.execute(HAND_WRITTEN_RFM)
    sql_seconds = time.perf_counter() - started

    started = time.perf_counter()
    orders = con.execute(
        "select order_id, customer_id, order_date, is_completed, currency_code, total_amount "
        "from marts.fct_orders"
    ).df()
    customers = con.execute("select customer_id, is_erased from marts.dim_customers").df()
    fx = con.execute("select * from reference.fx_rates").df()
    segments = con.execute("select * from reference.rfm_segments").df()
    pandas_read = time.perf_counter() - started
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    started = time.perf_counter()
    frame = pandas_rfm(orders, customers, fx, segments)
    pandas_compute = time.perf_counter() - started

    mart = con.execute(
        "select customer_id, frequency, r_score, f_score, m_score, rfm_segment "
        "from marts.customer_rfm order by customer_id"
    ).df()
    hand = con.execute(
        "select customer_id, frequency, r_score, f_score, m_score, rfm_segment "
        "from bench_rfm_sql order by customer_id"
    ).df()
    con.close()
    frame = frame.sort_values("customer_id").reset_index(drop=True)
    columns = ["customer_id", "frequency", "r_score", "f_score", "m_score", "rfm_segment"]
    same_sql = mart[columns].astype(str).equals(hand[columns].astype(str))
    frame["frequency"] = frame["frequency"].fillna(0).astype(int)
    for c in ("r_score", "f_score", "m_score"):
        frame[c] = frame[c].astype("Int64")
        mart[c] = mart[c].astype("Int64")
    same_pandas = mart[columns].astype(str).equals(frame[columns].astype(str))
    if not (same_sql and same_pandas):
        raise SystemExit(f"results differ: sql={same_sql} pandas={same_pandas}")
    pandas_total = pandas_read + pandas_compute
    return "\n".join([
        f"### RFM on {n_orders:,} orders, {n_customers:,} customers",
        "",
        "| implementation | seconds | vs dbt mart (SQL time) |",
        "|---|---:|---:|",
        f"| dbt mart, SQL time of its 3 models (run_results) | {dbt_sql:.2f} | 1.00x |",
        f"| dbt mart, wall time of `dbt run` incl. start-up | {dbt_wall:.2f} | |",
        f"| one hand-written DuckDB query | {sql_seconds:.2f} | "
        f"dbt / hand = {dbt_sql / sql_seconds:.2f}x |",
        f"| pandas, compute only (frames in memory) | {pandas_compute:.2f} | "
        f"pandas / dbt = {pandas_compute / dbt_sql:.1f}x |",
        f"| pandas, read from DuckDB + compute | {pandas_total:.2f} | "
        f"pandas / dbt = {pandas_total / dbt_sql:.1f}x |",
        "",
        f"All three give the same frequency, scores and segment for all {len(mart):,} "
        "customers (checked in the run).",
    ])  # fmt: skip


# ---------------------------------------------------------------------------------------
# Incremental events and sessions


def bench_incremental(customers: int, seed: int, placement: str) -> str:
    from segmint.generate import GeneratorConfig, generate
    from segmint.load import load
    from segmint.tone import score_new_tickets

    landing = WORK / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    generate(GeneratorConfig(customers, seed=seed, out=landing))
    warehouse = WORK / "loaded.duckdb"
    warehouse.unlink(missing_ok=True)
    load(landing, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        score_new_tickets(con)
    dbt(warehouse, "build", "--exclude", "test_type:unit")

    events = pd.read_parquet(landing / "web_events.parquet")
    late = events.sample(frac=0.01, random_state=seed).copy()
    late["event_id"] = "late_" + late["event_id"]
    stamps = pd.to_datetime(late["occurred_at"], format="ISO8601")
    if placement == "scattered":
        # Late events anywhere in history: half join a session, half start new ones.
        shift = np.where(np.arange(len(late)) % 2 == 0, 7, 180).astype("timedelta64[m]")
        stamps = stamps + shift
    else:
        # The next day's events: after everything loaded so far, on devices seen before.
        last = pd.to_datetime(events["occurred_at"], format="ISO8601").max()
        offsets = np.random.default_rng(seed).integers(60, 86_400, len(late))
        stamps = pd.Series(last + pd.to_timedelta(offsets, unit="s"), index=late.index)
    late["occurred_at"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    late.to_parquet(landing / "web_events_late.parquet")
    load(landing, warehouse)
    # The loaded warehouse stays as it is (to profile the incremental run again); each run
    # works on its own copy.
    incremental = WORK / "incremental_run.duckdb"
    shutil.copy(warehouse, incremental)
    copy = WORK / "full.duckdb"
    shutil.copy(warehouse, copy)
    # Write the copies out now: otherwise the first fsync of a timed run (DuckDB's
    # checkpoint) waits for gigabytes of the copy's dirty pages.
    os.sync()

    models = ["stg_web__events", "fct_web_events", "fct_sessions"]
    inc_wall, inc = dbt(incremental, "run", "--select", *models)
    full_wall, full = dbt(copy, "run", "--full-refresh", "--select", *models)
    con = duckdb.connect(str(copy), read_only=True)
    n_events = con.execute("select count(*) from marts.fct_web_events").fetchall()[0][0]
    n_sessions = con.execute("select count(*) from marts.fct_sessions").fetchall()[0][0]
    con.close()
    inc_sql, full_sql = sum(inc[m] for m in models), sum(full[m] for m in models)
    rows = [
        f"### Events and sessions: {len(late):,} new events (1%, {placement}) on "
        f"{len(events):,}, {customers:,} customers",
        "",
        f"After the run: {n_events:,} events, {n_sessions:,} sessions.",
        "",
        "| run | " + " | ".join(f"{m} s" for m in models) + " | SQL total s | wall s (dbt run) |",
        "|---|" + "---:|" * (len(models) + 2),
        "| full refresh | "
        + " | ".join(f"{full[m]:.2f}" for m in models)
        + f" | {full_sql:.2f} | {full_wall:.2f} |",
        "| incremental | "
        + " | ".join(f"{inc[m]:.2f}" for m in models)
        + f" | {inc_sql:.2f} | {inc_wall:.2f} |",
        "",
        f"Incremental / full refresh: {inc_sql / full_sql:.1%} of the SQL time, "
        f"{inc_wall / full_wall:.1%} of the wall time.",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["rfm", "incremental"])
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--placement",
        choices=["scattered", "appended"],
        default="scattered",
        help="new events anywhere in history, or all after the last one loaded",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "marts.md")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.what == "rfm":
        text = bench_rfm(args.orders, args.customers or 1_000_000, args.seed)
    else:
        text = bench_incremental(args.customers or 20_000, args.seed, args.placement)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{text}\n\n_{stamp}, {machine}, DuckDB {duckdb.__version__}._\n"
    print(block)
    with args.out.open("a") as out:
        out.write("\n" + block)


if __name__ == "__main__":
    main()
