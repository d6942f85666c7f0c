"""Predicted lifetime value per customer (ml/clv.py), written to schema ``ml``.

Reads completed orders (``marts.fct_orders``, amounts in the reporting currency through the
``fx_rates`` seed) up to the marts' as-of date (``intermediate.int_segments__as_of``), of
customers who are not erased; fits BG/NBD and Gamma-Gamma; writes one row per customer to
``ml.customer_predictions`` (replaced every run) and one row per run to
``ml.prediction_runs`` (parameters, likelihoods, or why the run was skipped).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

SCHEMA = "ml"
TABLES = {
    "customer_predictions": """
        customer_id varchar primary key,
        frequency double not null,
        recency_weeks double not null,
        tenure_weeks double not null,
        monetary_value double not null,
        probability_alive double not null,
        expected_purchases_30d double not null,
        expected_purchases_90d double not null,
        expected_purchases_365d double not null,
        expected_spend double not null,
        predicted_clv double not null,
        model_version varchar not null,
        scored_at timestamp not null""",
    "prediction_runs": """
        run_id varchar primary key,
        model varchar not null,
        as_of_date date,
        customers bigint not null,
        repeat_buyers bigint not null,
        parameters varchar,
        log_likelihood_purchases double,
        log_likelihood_spend double,
        horizon_months bigint not null,
        monthly_discount_rate double not null,
        skipped varchar,
        scored_at timestamp not null""",
}
MODEL = "bg_nbd+gamma_gamma (maximum likelihood)"
_ORDERS = """
    select orders.customer_id, orders.ordered_at,
           cast(orders.total_amount as double) * fx.rate_to_reporting as amount
    from marts.fct_orders as orders
    inner join marts.dim_customers as customers
        on orders.customer_id = customers.customer_id and not customers.is_erased
    left join reference.fx_rates as fx on orders.currency_code = fx.currency_code
    cross join intermediate.int_segments__as_of as as_of
    where orders.is_completed and orders.order_date <= as_of.as_of_date
"""


@dataclass
class PredictionReport:
    run_id: str
    as_of: object
    customers: int
    repeat_buyers: int
    parameters: dict
    skipped: str | None = None


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    from segmint import tables

    tables.ensure_tables(con, SCHEMA, TABLES)


def run_predictions(
    con: duckdb.DuckDBPyConnection, horizon_months: int = 12, monthly_discount_rate: float = 0.01
) -> PredictionReport:
    import pandas as pd

    from ml.clv import ClvError, customer_lifetime_value, fit_bgnbd, fit_gamma_gamma, summarize
    from segmint import tables

    ensure_tables(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    as_of = con.execute("select max(as_of_date) from intermediate.int_segments__as_of").fetchall()
    as_of = as_of[0][0]
    orders = con.execute(_ORDERS).df() if as_of is not None else pd.DataFrame()
    report = PredictionReport(run_id, as_of, 0, 0, {})
    frame = pd.DataFrame()
    ll_purchases = ll_spend = None
    try:
        if orders.empty:
            raise ClvError("no completed orders of known customers")
        summary = summarize(orders, pd.Timestamp(as_of))
        report.customers = len(summary)
        report.repeat_buyers = int((summary["frequency"] > 0).sum())
        bg, gg = fit_bgnbd(summary), fit_gamma_gamma(summary)
        ll_purchases, ll_spend = bg.log_likelihood, gg.log_likelihood
        report.parameters = {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b,
                             "p": gg.p, "q": gg.q, "v": gg.v}  # fmt: skip
        x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        frame = pd.DataFrame(
            {
                "customer_id": summary.index,
                "frequency": x,
                "recency_weeks": tx,
                "tenure_weeks": T,
                "monetary_value": summary["monetary_value"].to_numpy(float),
                "probability_alive": bg.probability_alive(x, tx, T),
                "expected_purchases_30d": bg.expected_purchases(30 / 7, x, tx, T),
                "expected_purchases_90d": bg.expected_purchases(90 / 7, x, tx, T),
                "expected_purchases_365d": bg.expected_purchases(365 / 7, x, tx, T),
                "expected_spend": gg.expected_spend(x, summary["monetary_value"].to_numpy(float)),
                "predicted_clv": customer_lifetime_value(
                    bg, gg, summary, horizon_months, monthly_discount_rate
                ).to_numpy(),
                "model_version": run_id,
                "scored_at": now,
            }
        )
    except ClvError as exc:
        report.skipped = str(exc)
    con.execute("begin transaction")
    try:
        # Stale predictions are worse than none: the table holds this run's or nothing.
        con.execute(f"delete from {SCHEMA}.customer_predictions")
        tables.insert_frame(con, f"{SCHEMA}.customer_predictions", frame)
        con.execute(
            f"insert into {SCHEMA}.prediction_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, MODEL, as_of, report.customers, report.repeat_buyers,
             json.dumps(report.parameters) if report.parameters else None, ll_purchases,
             ll_spend, horizon_months, monthly_discount_rate, report.skipped, now],
        )  # fmt: skip
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return report
