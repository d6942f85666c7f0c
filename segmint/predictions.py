"""Predictions per customer, written to schema ``ml``: lifetime value (ml/clv.py) and the
churn and purchase propensities (ml/propensity.py).

Reads, up to the marts' as-of date (``intermediate.int_segments__as_of``) and for customers
who are not erased: completed orders (``marts.fct_orders``, amounts in the reporting
currency through the ``fx_rates`` seed), sessions (``marts.fct_sessions``) and support
tickets with their tone. Writes:
- ``ml.customer_predictions``: one row per customer, replaced every run (stale predictions
  are worse than none);
- ``ml.prediction_runs``: one row per run of the lifetime value models (parameters,
  likelihoods, or why the run was skipped);
- ``ml.propensity_runs``: one row per run and propensity model (parameters, the backtest
  against the RFM baseline, deciles, permutation importances, the score histogram the
  drift check compares, or why it was skipped);
- ``ml.propensity_models``: the last fitted model of each propensity model, pickled (base64
  text, which both warehouses store alike), with the run that trained it. Later runs score
  with it until it is ``retrain_days`` old (ml/propensity.py, "Retraining"); their
  ``propensity_runs`` row names the training run (``parameters.trained_in_run``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # scikit-learn and pandas load when the step runs
    from ml.config import PropensityConfig
    from ml.propensity import ModelResult

SCHEMA = "ml"
PREDICTIONS_TABLE = "customer_predictions"
TABLES = {
    PREDICTIONS_TABLE: """
        customer_id varchar primary key,
        frequency double,
        recency_weeks double,
        tenure_weeks double,
        monetary_value double,
        probability_alive double,
        expected_purchases_30d double,
        expected_purchases_90d double,
        expected_purchases_365d double,
        expected_spend double,
        predicted_clv double,
        churn_probability double,
        purchase_probability_30d double,
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
    "propensity_runs": """
        run_id varchar not null,
        model varchar not null,
        as_of_date date not null,
        window_days bigint not null,
        customers_scored bigint not null,
        training_rows bigint not null,
        training_positive_rate double,
        parameters varchar not null,
        backtest varchar,
        baseline varchar,
        deciles varchar,
        importances varchar,
        score_histogram varchar,
        skipped varchar,
        scored_at timestamp not null,
        primary key (run_id, model)""",
    "propensity_models": """
        model varchar primary key,
        run_id varchar not null,
        as_of_date date not null,
        fingerprint varchar not null,
        classifier varchar not null,
        trained_at timestamp not null""",
}
# The propensity score each model writes to customer_predictions.
SCORE_COLUMNS = {"churn": "churn_probability", "purchase": "purchase_probability_30d"}
# The score histogram's bins: fixed, so runs compare (population stability index).
HISTOGRAM_EDGES = [i / 10 for i in range(11)]
MODEL = "bg_nbd+gamma_gamma (maximum likelihood)"
_AS_OF = "cross join intermediate.int_segments__as_of as as_of"
_ORDERS = f"""
    select orders.customer_id, orders.ordered_at,
           cast(orders.total_amount as double) * fx.rate_to_reporting as amount,
           coalesce(orders.is_discounted, false) as is_discounted
    from marts.fct_orders as orders
    inner join marts.dim_customers as customers
        on orders.customer_id = customers.customer_id and not customers.is_erased
    left join reference.fx_rates as fx on orders.currency_code = fx.currency_code
    {_AS_OF}
    where orders.is_completed and orders.order_date <= as_of.as_of_date
"""
_CUSTOMERS = f"""
    select customer_id, first_seen_at
    from marts.dim_customers {_AS_OF}
    where not is_erased and first_seen_at < as_of.as_of_end_at
"""
_SESSIONS = f"""
    select sessions.customer_id, sessions.session_start_at as started_at,
           coalesce(sessions.cart_adds, 0) > 0 as has_cart_add
    from marts.fct_sessions as sessions
    inner join marts.dim_customers as customers
        on sessions.customer_id = customers.customer_id and not customers.is_erased
    {_AS_OF}
    where sessions.session_start_at < as_of.as_of_end_at
"""
_TICKETS = f"""
    select records.customer_id, tickets.created_at,
           coalesce(tones.tone = 'negative', false) as is_negative
    from staging.stg_support__tickets as tickets
    inner join intermediate.int_identity__record_customers as records
        on records.source_table = 'support_tickets'
        and tickets.ticket_id = records.source_record_id
    inner join marts.dim_customers as customers
        on records.customer_id = customers.customer_id and not customers.is_erased
    left join staging.stg_enrichment__ticket_tones as tones on tickets.ticket_id = tones.ticket_id
    {_AS_OF}
    where tickets.created_at < as_of.as_of_end_at
"""


@dataclass
class PredictionReport:
    run_id: str
    as_of: object
    customers: int
    repeat_buyers: int
    parameters: dict
    skipped: str | None = None
    propensity: dict[str, ModelResult] = field(default_factory=dict)
    # Per model: the population stability index of its scores against the previous run's.
    drift: dict[str, float | None] = field(default_factory=dict)
    # PNG plots by name (ml/prediction_plots.py): calibration, lift, tracking.
    plots: dict[str, bytes] = field(default_factory=dict)


def ensure_tables(con) -> None:
    from segmint import tables

    # customer_predictions is replaced every run: an older warehouse's table, with other
    # columns, is dropped first (before any transaction: DDL commits one on Snowflake).
    tables.drop_if_columns_differ(con, SCHEMA, PREDICTIONS_TABLE, TABLES[PREDICTIONS_TABLE])
    tables.ensure_tables(con, SCHEMA, TABLES)


def _activity(con):
    from ml.propensity import Activity

    return Activity(
        customers=con.execute(_CUSTOMERS).df(),
        orders=con.execute(_ORDERS).df(),
        sessions=con.execute(_SESSIONS).df(),
        tickets=con.execute(_TICKETS).df(),
    )


def _lifetime_value(orders, as_of, report: PredictionReport, horizon_months: int,
                    monthly_discount_rate: float):  # fmt: skip
    """The lifetime value columns per customer, and the likelihoods (or the skip reason)."""
    import pandas as pd

    from ml.clv import (
        ClvError,
        customer_lifetime_value,
        fit_bgnbd,
        fit_gamma_gamma,
        summarize,
        tracking,
    )
    from ml.prediction_plots import tracking as tracking_plot

    try:
        if orders.empty:
            raise ClvError("no completed orders of known customers")
        summary = summarize(orders, pd.Timestamp(as_of))
        report.customers = len(summary)
        report.repeat_buyers = int((summary["frequency"] > 0).sum())
        bg, gg = fit_bgnbd(summary), fit_gamma_gamma(summary)
    except ClvError as exc:
        report.skipped = str(exc)
        return pd.DataFrame(), None, None
    report.parameters = {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b,
                         "p": gg.p, "q": gg.q, "v": gg.v}  # fmt: skip
    report.plots["tracking"] = tracking_plot(tracking(orders, pd.Timestamp(as_of), bg))
    x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    value = summary["monetary_value"].to_numpy(float)
    frame = pd.DataFrame(
        {
            "frequency": x,
            "recency_weeks": tx,
            "tenure_weeks": T,
            "monetary_value": value,
            "probability_alive": bg.probability_alive(x, tx, T),
            "expected_purchases_30d": bg.expected_purchases(30 / 7, x, tx, T),
            "expected_purchases_90d": bg.expected_purchases(90 / 7, x, tx, T),
            "expected_purchases_365d": bg.expected_purchases(365 / 7, x, tx, T),
            "expected_spend": gg.expected_spend(x, value),
            "predicted_clv": customer_lifetime_value(
                bg, gg, summary, horizon_months, monthly_discount_rate
            ).to_numpy(),
        },
        index=summary.index,
    )
    return frame, bg.log_likelihood, gg.log_likelihood


def score_histogram(scores) -> list[int]:
    """Counts of scores in the fixed bins ``HISTOGRAM_EDGES``."""
    import numpy as np

    counts, _ = np.histogram(np.clip(scores, 0, 1), bins=HISTOGRAM_EDGES)
    return [int(c) for c in counts]


def population_stability(previous: list[int], current: list[int]) -> float:
    """The population stability index of two histograms over the same bins (0: the same;
    above 0.25 is commonly read as a shift). Empty bins count as half a customer."""
    import numpy as np

    p, q = (np.maximum(np.asarray(h, float), 0.5) for h in (previous, current))
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def _previous_histograms(con) -> dict[str, list[int]]:
    rows = con.execute(
        f"""select model, score_histogram from {SCHEMA}.propensity_runs
            where skipped is null and score_histogram is not null
            qualify row_number() over (partition by model order by scored_at desc) = 1"""
    ).fetchall()
    return {model: json.loads(histogram) for model, histogram in rows}


def run_predictions(
    con,
    horizon_months: int = 12,
    monthly_discount_rate: float = 0.01,
    propensity: PropensityConfig | None = None,
) -> PredictionReport:
    """Fit and score both families as of the marts' as-of date; write the ml tables.

    ``con``: a DuckDB connection or a segmint.snowflake.SnowflakeConnection.
    """
    import pandas as pd

    from ml.config import PropensityConfig
    from ml.propensity import MODELS, run_model
    from segmint import tables

    propensity = propensity or PropensityConfig()
    ensure_tables(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    as_of = con.execute("select max(as_of_date) from intermediate.int_segments__as_of").fetchall()
    as_of = as_of[0][0]
    report = PredictionReport(run_id, as_of, 0, 0, {})
    activity = _activity(con) if as_of is not None else None
    orders = activity.orders if activity is not None else pd.DataFrame()
    clv, ll_purchases, ll_spend = _lifetime_value(
        orders, as_of, report, horizon_months, monthly_discount_rate
    )
    columns = [clv]
    trained = _trained_models(con, propensity) if activity is not None else {}
    for model in MODELS:
        if activity is None:
            continue
        result = run_model(activity, model, pd.Timestamp(as_of), propensity, trained.get(model))
        report.propensity[model] = result
        if not result.skipped:
            columns.append(result.scores.rename(SCORE_COLUMNS[model]).to_frame())
    frame = pd.concat(columns, axis=1) if any(len(c) for c in columns) else pd.DataFrame()
    if len(frame):
        frame.index.name = "customer_id"
        frame = frame.reset_index().assign(model_version=run_id, scored_at=now)
    deciles = {m: r.deciles for m, r in report.propensity.items() if r.deciles}
    if deciles:
        from ml import prediction_plots

        report.plots["calibration"] = prediction_plots.calibration(deciles)
        report.plots["lift"] = prediction_plots.lift(deciles)
    previous = _previous_histograms(con)
    runs, models = [], []
    for model, result in report.propensity.items():
        earlier = trained[model].fitted if model in trained else None
        if result.fitted is not None and result.fitted is not earlier:  # trained in this run
            result.parameters["trained_in_run"] = run_id
            models.append(_stored_model(model, run_id, result, propensity, now))
        histogram = None if result.skipped else score_histogram(result.scores.to_numpy())
        if histogram and sum(histogram) and model in previous:
            report.drift[model] = population_stability(previous[model], histogram)
        runs.append(
            {
                "run_id": run_id,
                "model": model,
                "as_of_date": as_of,
                "window_days": result.window_days,
                "customers_scored": len(result.scores),
                "training_rows": result.training_rows,
                "training_positive_rate": result.training_positive_rate,
                "parameters": json.dumps(result.parameters),
                "backtest": json.dumps(result.backtest) if result.backtest else None,
                "baseline": json.dumps(result.baseline) if result.baseline else None,
                "deciles": json.dumps(result.deciles) if result.deciles else None,
                "importances": json.dumps(result.importances) if result.importances else None,
                "score_histogram": json.dumps(histogram) if histogram else None,
                "skipped": result.skipped,
                "scored_at": now,
            }
        )
    with tables.transaction(con):
        con.execute(f"delete from {SCHEMA}.{PREDICTIONS_TABLE}")
        tables.insert_frame(con, f"{SCHEMA}.{PREDICTIONS_TABLE}", frame)
        con.execute(
            f"insert into {SCHEMA}.prediction_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, MODEL, as_of, report.customers, report.repeat_buyers,
             json.dumps(report.parameters) if report.parameters else None, ll_purchases,
             ll_spend, horizon_months, monthly_discount_rate, report.skipped, now],
        )  # fmt: skip
        tables.insert_frame(con, f"{SCHEMA}.propensity_runs", pd.DataFrame(runs))
        for row in models:
            con.execute(f"delete from {SCHEMA}.propensity_models where model = ?", [row["model"]])
        tables.insert_frame(con, f"{SCHEMA}.propensity_models", pd.DataFrame(models))
    return report


def _stored_model(model: str, run_id: str, result: ModelResult, config: PropensityConfig,
                  now: datetime) -> dict:  # fmt: skip
    import base64
    import pickle

    from ml.propensity import fingerprint

    return {
        "model": model,
        "run_id": run_id,
        "as_of_date": result.trained_as_of.date(),
        "fingerprint": fingerprint(config, model),
        "classifier": base64.b64encode(pickle.dumps(result.fitted)).decode("ascii"),
        "trained_at": now,
    }


def _trained_models(con, config: PropensityConfig) -> dict[str, ModelResult]:
    """Per model, the last fitted model and its training run's report, when trained with
    these settings (``ml.propensity.reusable`` decides on its age). The pickles are the
    warehouse's own, written by this module: whoever may write schema ``ml`` is trusted as
    the code is."""
    import base64
    import pickle

    import pandas as pd

    from ml.propensity import ModelResult, fingerprint

    if config.retrain_days <= 0:
        return {}
    rows = con.execute(
        f"""select m.model, m.as_of_date, m.fingerprint, m.classifier, r.window_days,
                   r.training_rows, r.training_positive_rate, r.parameters, r.backtest,
                   r.baseline, r.deciles, r.importances
            from {SCHEMA}.propensity_models as m
            inner join {SCHEMA}.propensity_runs as r
                on r.run_id = m.run_id and r.model = m.model and r.skipped is null"""
    ).fetchall()
    trained = {}
    for (model, as_of, stored_fingerprint, classifier, window_days, training_rows, positive_rate,
         parameters, backtest, baseline, deciles, importances) in rows:  # fmt: skip
        if stored_fingerprint != fingerprint(config, model):
            continue
        trained[model] = ModelResult(
            model, int(window_days), pd.Timestamp(as_of),
            parameters=json.loads(parameters), training_rows=int(training_rows),
            training_positive_rate=positive_rate,
            backtest=json.loads(backtest) if backtest else {},
            baseline=json.loads(baseline) if baseline else {},
            deciles=json.loads(deciles) if deciles else [],
            importances=json.loads(importances) if importances else {},
            fitted=pickle.loads(base64.b64decode(classifier)),
            trained_as_of=pd.Timestamp(as_of),
        )  # fmt: skip
    return trained
