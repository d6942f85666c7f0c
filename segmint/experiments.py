"""Experiments on audiences: the arm rule in Python, and planted-effect data for checking
the measurement (docs/experiments.md).

The warehouse assigns arms in SQL (models/marts/experiments/experiment_assignments.sql,
macro hex_fraction); ``arm`` is the same rule, used by tests to hold the SQL to it.
``plant`` writes synthetic experiments whose true uplift is known into a warehouse file, in
the relations ``experiment_results`` reads, so that the real model can be built on them and
its intervals checked against the truth (tests/warehouse/test_experiments.py,
bench/experiments.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

HOLDOUT, TREATMENT = "holdout", "treatment"
# The columns experiment_results reads, typed as the models build them.
ASSIGNMENT_COLUMNS = """assignment_id varchar, experiment_id varchar, audience_name varchar,
    customer_id varchar, arm varchar, assignment_fraction double, holdout_share double,
    entry_date date"""
ORDER_COLUMNS = """order_id varchar, customer_id varchar, ordered_at timestamp, order_date date,
    total_amount decimal(18, 2), is_completed boolean, currency_code varchar,
    order_status varchar"""


def assignment_fraction(experiment_id: str, customer_id: str) -> float:
    """int(md5('<experiment>:<customer>')[:4], 16) / 65536: the SQL macro's number."""
    digest = hashlib.md5(f"{experiment_id}:{customer_id}".encode()).hexdigest()
    return int(digest[:4], 16) / 65536


def arm(experiment_id: str, customer_id: str, holdout_share: float) -> str:
    return HOLDOUT if assignment_fraction(experiment_id, customer_id) < holdout_share else TREATMENT


@dataclass(frozen=True)
class Planted:
    """Synthetic experiments with a known effect: ``members`` customers each, entering on
    ``entry``; a member converts (one completed order in the window) with probability
    ``base_rate`` in the holdout and ``base_rate + lift`` in treatment; order values are
    gamma distributed with mean ``mean_amount``, so the true revenue uplift per member is
    ``lift * mean_amount``. Every member also has an order on the entry day and one after
    the window (neither may count)."""

    experiments: int = 100
    members: int = 4000
    holdout_share: float = 0.2
    base_rate: float = 0.10
    lift: float = 0.03
    window_days: int = 30
    mean_amount: float = 50.0
    entry: date = date(2026, 1, 1)
    seed: int = 0

    @property
    def as_of(self) -> date:
        return self.entry + timedelta(days=self.window_days)

    def experiment_ids(self) -> list[str]:
        return [f"planted_{self.seed}_{i:03d}" for i in range(self.experiments)]

    def audiences_override(self) -> list[dict]:
        """The dbt var declaring the experiments (as audiences with an experiment)."""
        return [
            {"name": e, "description": "planted", "priority": i, "condition": {},
             "experiment": {"holdout_share": self.holdout_share,
                            "windows": [self.window_days], "min_detectable_effect": 0.02}}
            for i, e in enumerate(self.experiment_ids())
        ]  # fmt: skip


def plant(con: duckdb.DuckDBPyConnection, planted: Planted) -> None:
    """Replace marts.experiment_assignments, marts.fct_orders, marts.dim_customers and the
    as-of table with the planted experiments (every other relation is left alone)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(planted.seed)
    customers = [f"cust_{planted.seed}_{i:06d}" for i in range(planted.members)]
    assignments, orders = [], []
    entry = pd.Timestamp(planted.entry)
    for experiment_id in planted.experiment_ids():
        # Customer ids are per experiment: the experiments are independent samples.
        ids = [f"{experiment_id}:{c}" for c in customers]
        arms = [arm(experiment_id, cid, planted.holdout_share) for cid in ids]
        treated = np.array([a == TREATMENT for a in arms])
        rate = planted.base_rate + planted.lift * treated
        converted = rng.random(planted.members) < rate
        day = rng.integers(1, planted.window_days + 1, planted.members)
        amount = rng.gamma(4.0, planted.mean_amount / 4.0, planted.members)
        for i, cid in enumerate(ids):
            assignments.append((f"{experiment_id}:{cid}", experiment_id, experiment_id, cid,
                                arms[i], planted.holdout_share, planted.entry))  # fmt: skip
            orders.append((f"{cid}:entry", cid, entry, 20.0))
            orders.append((f"{cid}:late", cid, entry + pd.Timedelta(days=planted.window_days + 1),
                           20.0))  # fmt: skip
            if converted[i]:
                orders.append((f"{cid}:won", cid, entry + pd.Timedelta(days=int(day[i])),
                               float(amount[i])))  # fmt: skip
    a = pd.DataFrame(assignments, columns=["assignment_id", "experiment_id", "audience_name",
                                           "customer_id", "arm", "holdout_share",
                                           "entry_date"])  # fmt: skip
    a["assignment_fraction"] = 0.0
    o = pd.DataFrame(orders, columns=["order_id", "customer_id", "ordered_at", "total_amount"])
    o["ordered_at"] = pd.to_datetime(o["ordered_at"])
    o = o.assign(order_date=o["ordered_at"].dt.date, is_completed=True, currency_code="USD",
                 order_status="completed")  # fmt: skip
    for schema in ("marts", "intermediate"):
        con.execute(f"create schema if not exists {schema}")
    con.execute(f"create or replace table marts.experiment_assignments ({ASSIGNMENT_COLUMNS})")
    con.execute(f"create or replace table marts.fct_orders ({ORDER_COLUMNS})")
    con.register("_assignments", a)
    con.register("_orders", o)
    con.execute("insert into marts.experiment_assignments by name select * from _assignments")
    con.execute("insert into marts.fct_orders by name select * from _orders")
    con.execute("create or replace table marts.dim_customers as select distinct customer_id, "
                "false as is_erased from marts.experiment_assignments")  # fmt: skip
    con.execute(
        "create or replace table intermediate.int_segments__as_of as "
        "select cast(? as date) as as_of_date, cast(? as timestamp) as as_of_end_at",
        [planted.as_of, planted.as_of + timedelta(days=1)],
    )
    con.unregister("_assignments")
    con.unregister("_orders")


def plot_results(con: duckdb.DuckDBPyConnection) -> dict[str, bytes]:
    """A PNG per experiment with readable rows in marts.experiment_results (members in both
    arms): conversion by arm and the uplift's interval, per window."""
    from ml.prediction_plots import experiment

    results = con.execute(
        "select * from marts.experiment_results where treatment_members > 0 and holdout_members > 0"
    ).df()
    return {eid: experiment(rows) for eid, rows in results.groupby("experiment_id")}
