"""Churn and purchase propensity: point-in-time features, time-split labels, calibrated
gradient boosting, and an out-of-time backtest against a plain RFM-score baseline.

Two models, one method (``MODELS``):
- ``churn``: among customers with a completed order by the cut-off, the probability of *no*
  completed order in the next ``churn_days``;
- ``purchase``: among every customer known by the cut-off (buyers or not), the probability
  of a completed order in the next ``purchase_days``.

Time split, with A the as-of date and w the model's window:
- **score**: features as of A; nothing after A is ever read.
- **train**: features as of A - w, labels from (A - w, A].
- **backtest**: a model trained at A - 2w (labels from (A - 2w, A - w]) scores the customers
  as of A - w and is measured against their labels from (A - w, A], beside the baseline
  trained and measured on the same split. Permutation importance is computed on that test.

Features at a cut-off use only what happened on or before its day (``features_at``); the
leakage test in tests/ml/test_propensity.py changes everything after it and compares.
Probabilities are calibrated with cross-validated isotonic regression (sigmoid on fewer than
``ISOTONIC_MIN_ROWS`` training rows).

**Retraining.** Training and the backtest are most of the cost; scoring is a small part. A
model trained in an earlier run scores again (``run_model(..., trained=...)``) while it is
less than ``retrain_days`` old by as-of date and was trained with the same settings; its
report (backtest, baseline, deciles, importances) is the one from its training run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from ml.config import PropensityConfig

DAY = pd.Timedelta(days=1)
MODELS = ("churn", "purchase")
ISOTONIC_MIN_ROWS = 2000
# The backtest's summary by decile of predicted probability (calibration and lift plots).
DECILES = 10
FEATURES = (
    "tenure_days",
    "recency_days",
    "days_since_first_order",
    "order_days",
    "monetary",
    "average_order_value",
    "orders_30d",
    "orders_90d",
    "orders_180d",
    "orders_365d",
    "spend_90d",
    "discounted_order_share",
    "mean_days_between_orders",
    "overdue_ratio",
    "sessions_30d",
    "sessions_90d",
    "sessions_30_to_90d",
    "cart_sessions_30d",
    "days_since_last_visit",
    "tickets_90d",
    "negative_tickets_90d",
    "days_since_negative_ticket",
)


# Features that have no value without the history they describe (NaN); every other feature
# is a count or a sum, 0 without history.
UNKNOWN_WITHOUT_HISTORY = (
    "tenure_days",
    "recency_days",
    "days_since_first_order",
    "average_order_value",
    "discounted_order_share",
    "mean_days_between_orders",
    "overdue_ratio",
    "days_since_last_visit",
    "days_since_negative_ticket",
)


class PropensityError(ValueError):
    """The data cannot support the model: too little history, too few of a class."""


@dataclass
class Activity:
    """What features and labels come from; times are naive UTC timestamps.

    - customers: customer_id, first_seen_at
    - orders (completed only): customer_id, ordered_at, amount, is_discounted
    - sessions: customer_id, started_at, has_cart_add
    - tickets: customer_id, created_at, is_negative
    """

    customers: pd.DataFrame
    orders: pd.DataFrame
    sessions: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {"customer_id": [], "started_at": pd.to_datetime([]), "has_cart_add": []}
        )
    )
    tickets: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {"customer_id": [], "created_at": pd.to_datetime([]), "is_negative": []}
        )
    )

    @cached_property
    def coded(self) -> tuple[pd.Index, Activity]:
        """The customers' ids (sorted), and the same activity keyed by position in them.

        features_at runs for every training snapshot and cutoff (20 times a run) and aligns
        some twenty aggregates each time: on integer keys that alignment is cheap, on 100,000
        string ids it was 8.8 s of a 43 s predictions step. Rows of a customer not in
        ``customers`` are left out, as aligning them to the customers did.
        """
        ids = pd.Index(np.sort(self.customers["customer_id"].unique()), name="customer_id")

        def keyed(frame: pd.DataFrame) -> pd.DataFrame:
            position = ids.get_indexer(frame["customer_id"])
            return frame.assign(customer_id=position)[position >= 0]

        return ids, Activity(
            keyed(self.customers), keyed(self.orders), keyed(self.sessions), keyed(self.tickets)
        )


@dataclass
class ModelResult:
    """One model of one run: its scores as of A, or why it was skipped."""

    model: str
    window_days: int
    as_of: pd.Timestamp
    scores: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    parameters: dict = field(default_factory=dict)
    training_rows: int = 0
    training_positive_rate: float | None = None
    backtest: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)
    deciles: list = field(default_factory=list)
    importances: dict = field(default_factory=dict)
    skipped: str | None = None
    # The model that scored: trained in this run, or an earlier one's (``trained_as_of``).
    fitted: Fitted | None = field(default=None, repr=False, compare=False)
    trained_as_of: pd.Timestamp | None = None


def _days_between(later: pd.Timestamp, earlier: pd.Series) -> pd.Series:
    return (later - earlier.dt.normalize()).dt.days.astype(float)


def features_at(activity: Activity, cutoff: pd.Timestamp) -> pd.DataFrame:
    """One row per customer first seen on or before ``cutoff``'s day: ``FEATURES``, built
    only from what happened on or before that day. Missing history is NaN (recencies) or 0
    (counts); gradient boosting handles NaN natively."""
    ids, activity = activity.coded
    day = pd.Timestamp(cutoff).normalize()
    end = day + DAY
    seen = activity.customers[activity.customers["first_seen_at"] < end]
    out = pd.DataFrame(index=pd.Index(np.sort(seen["customer_id"].unique())))
    out["tenure_days"] = _days_between(day, seen.groupby("customer_id")["first_seen_at"].min())

    orders = activity.orders[activity.orders["ordered_at"] < end]
    ago = _days_between(day, orders["ordered_at"])
    by = orders.assign(ago=ago, day=orders["ordered_at"].dt.normalize()).groupby("customer_id")
    out["recency_days"] = by["ago"].min()
    out["days_since_first_order"] = by["ago"].max()
    out["order_days"] = by["day"].nunique()
    out["monetary"] = by["amount"].sum()
    out["average_order_value"] = by["amount"].mean()
    for window in (30, 90, 180, 365):
        out[f"orders_{window}d"] = orders[ago < window].groupby("customer_id").size()
    out["spend_90d"] = orders[ago < 90].groupby("customer_id")["amount"].sum()
    out["discounted_order_share"] = by["is_discounted"].mean()
    repeat = out["order_days"] > 1
    out["mean_days_between_orders"] = (out["days_since_first_order"] - out["recency_days"]).where(
        repeat
    ) / (out["order_days"] - 1).where(repeat)
    out["overdue_ratio"] = out["recency_days"] / out["mean_days_between_orders"].clip(lower=1)

    sessions = activity.sessions[activity.sessions["started_at"] < end]
    s_ago = _days_between(day, sessions["started_at"])
    out["sessions_30d"] = sessions[s_ago < 30].groupby("customer_id").size()
    out["sessions_90d"] = sessions[s_ago < 90].groupby("customer_id").size()
    out["sessions_30_to_90d"] = sessions[(s_ago >= 30) & (s_ago < 90)].groupby("customer_id").size()
    carts = sessions[(s_ago < 30) & sessions["has_cart_add"].astype(bool)]
    out["cart_sessions_30d"] = carts.groupby("customer_id").size()
    out["days_since_last_visit"] = s_ago.groupby(sessions["customer_id"]).min()

    tickets = activity.tickets[activity.tickets["created_at"] < end]
    t_ago = _days_between(day, tickets["created_at"])
    negative = tickets["is_negative"].fillna(False).astype(bool)
    out["tickets_90d"] = tickets[t_ago < 90].groupby("customer_id").size()
    out["negative_tickets_90d"] = tickets[(t_ago < 90) & negative].groupby("customer_id").size()
    out["days_since_negative_ticket"] = t_ago[negative].groupby(tickets["customer_id"]).min()

    counts = [c for c in FEATURES if c not in UNKNOWN_WITHOUT_HISTORY]
    out[counts] = out[counts].fillna(0)
    out.index = ids[out.index]
    return out[list(FEATURES)].astype(float)


def purchased_within(activity: Activity, cutoff: pd.Timestamp, days: int) -> pd.Series:
    """Customers with a completed order after ``cutoff``'s day and within ``days`` of it."""
    start = pd.Timestamp(cutoff).normalize() + DAY
    orders = activity.orders
    inside = orders[(orders["ordered_at"] >= start) & (orders["ordered_at"] < start + days * DAY)]
    return pd.Series(True, index=pd.Index(inside["customer_id"].unique(), name="customer_id"))


def population(model: str, features: pd.DataFrame) -> pd.DataFrame:
    """Who a model is about: buyers for churn, everyone known for purchase."""
    return features[features["order_days"] > 0] if model == "churn" else features


def labelled(activity: Activity, model: str, cutoff: pd.Timestamp, days: int):
    """Features at ``cutoff`` and the labels from the window after it."""
    frame = population(model, features_at(activity, cutoff))
    bought = purchased_within(activity, cutoff, days).reindex(frame.index, fill_value=False)
    label = ~bought if model == "churn" else bought
    return frame, label.astype(int).to_numpy()


def rfm_scores(frame: pd.DataFrame) -> np.ndarray:
    """The plain RFM score, 3..15 (quintiles of recency, order days and monetary within the
    population); 0 for customers without an order."""

    def quintile(values: pd.Series) -> pd.Series:
        return np.ceil(values.rank(pct=True, method="average") * 5).clip(1, 5)

    buyers = frame["order_days"] > 0
    score = pd.Series(0.0, index=frame.index)
    b = frame[buyers]
    if len(b):
        score[buyers] = (
            quintile(-b["recency_days"]) + quintile(b["order_days"]) + quintile(b["monetary"])
        )
    return score.to_numpy()


class RfmBaseline:
    """Each RFM score's label rate in training, shrunk toward the overall rate."""

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> RfmBaseline:
        scores = rfm_scores(frame)
        self.rate = float(np.mean(y))
        table = pd.DataFrame({"score": scores, "y": y}).groupby("score")["y"].agg(["sum", "count"])
        self.rates = ((table["sum"] + 2 * self.rate) / (table["count"] + 2)).to_dict()
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array([self.rates.get(s, self.rate) for s in rfm_scores(frame)])


def _classifier(config: PropensityConfig, rows: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    base = HistGradientBoostingClassifier(
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        min_samples_leaf=config.min_samples_leaf,
        l2_regularization=config.l2_regularization,
        early_stopping=False,
        random_state=config.random_state,
    )
    method = "isotonic" if rows >= ISOTONIC_MIN_ROWS else "sigmoid"
    folds = StratifiedKFold(config.calibration_folds, shuffle=True,
                            random_state=config.random_state)  # fmt: skip
    return CalibratedClassifierCV(base, method=method, cv=folds), method


def _check_classes(model: str, y: np.ndarray, cutoff: pd.Timestamp, config: PropensityConfig):
    positives, rows = int(y.sum()), len(y)
    if min(positives, rows - positives) < config.min_class_count:
        raise PropensityError(
            f"{model}: the window after {cutoff:%Y-%m-%d} has {positives} positive and "
            f"{rows - positives} negative customers; each needs at least "
            f"{config.min_class_count} (min_class_count)"
        )


@dataclass
class Fitted:
    """A calibrated classifier on ``columns`` and the RFM baseline, trained together."""

    classifier: object
    baseline: RfmBaseline
    calibration: str
    columns: list[str]
    rows: int
    positive_rate: float

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.classifier.predict_proba(frame[self.columns].to_numpy())[:, 1]


def fit(activity: Activity, model: str, cutoff: pd.Timestamp, config: PropensityConfig) -> Fitted:
    """The calibrated classifier and the baseline trained at ``cutoff``. Features with no
    variation in the training window (a source the business does not have) are left out."""
    days = config.window(model)
    frames, labels = [], []
    for i in range(config.training_snapshots):
        frame, y = labelled(activity, model, cutoff - i * days * DAY, days)
        if i == 0:
            _check_classes(model, y, cutoff, config)
        if len(y) < config.min_class_count:
            break  # before the business had customers
        frames.append(frame)
        labels.append(y)
    frame, y = pd.concat(frames), np.concatenate(labels)
    if len(y) > config.max_training_rows:
        rng = np.random.default_rng(config.random_state)
        keep = np.sort(rng.choice(len(y), config.max_training_rows, replace=False))
        frame, y = frame.iloc[keep], y[keep]
    columns = [c for c in frame.columns if frame[c].nunique(dropna=True) > 1]
    if not columns:
        raise PropensityError(f"{model}: no feature varies among customers at {cutoff:%Y-%m-%d}")
    classifier, method = _classifier(config, len(y))
    classifier.fit(frame[columns].to_numpy(), y)
    baseline = RfmBaseline().fit(frame, y)
    return Fitted(classifier, baseline, method, columns, len(y), float(np.mean(y)))


def metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """AUC, log loss, Brier score and lift in the top decile of ``p``."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    order = np.argsort(-p, kind="stable")
    top = order[: max(1, int(np.ceil(len(p) / DECILES)))]
    rate = float(np.mean(y))
    return {
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "top_decile_lift": float(np.mean(y[top]) / rate) if rate > 0 else None,
        "positive_rate": rate,
        "rows": len(y),
    }


def decile_table(y: np.ndarray, p: np.ndarray) -> list[dict]:
    """Per decile of predicted probability (highest first): mean predicted and observed."""
    order = np.argsort(-p, kind="stable")
    return [
        {
            "decile": i + 1,
            "rows": len(part),
            "predicted": float(p[part].mean()),
            "observed": float(y[part].mean()),
        }
        for i, part in enumerate(np.array_split(order, DECILES))
        if len(part)
    ]


# Rows per prediction call in permutation_importances: the permuted copies of a feature's
# sample are scored together, a few features at a time (bounded memory, few calls).
IMPORTANCE_BATCH_ROWS = 200_000


def permutation_importances(predict_proba, X: np.ndarray, y: np.ndarray, repeats: int,
                            random_state: int) -> np.ndarray:  # fmt: skip
    """Mean drop in ROC AUC when each column of ``X`` is shuffled, ``repeats`` times.

    The same shuffles and the same figures as scikit-learn's ``permutation_importance``
    (``scoring="roc_auc"``; tests/ml/test_propensity.py compares them), but the shuffled
    copies are predicted in a few large calls instead of one call per feature and repeat:
    a calibrated boosted model costs about a millisecond per tree per call whatever the rows,
    which made the importances half of the predictions step (3.6 s of 7.0 s at 2,000
    customers).
    """
    from sklearn.metrics import roc_auc_score

    n, k = X.shape
    # permutation_importance draws one seed, then every feature starts its own generator
    # from it and shuffles its (already shuffled) column again on each repeat.
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    baseline = roc_auc_score(y, predict_proba(X))
    drops = np.empty((k, repeats))
    per_call = max(1, IMPORTANCE_BATCH_ROWS // max(1, n * repeats))
    for first in range(0, k, per_call):
        columns = range(first, min(k, first + per_call))
        copies = []
        for j in columns:
            state, order, permuted = np.random.RandomState(seed), np.arange(n), X.copy()
            for _ in range(repeats):
                state.shuffle(order)
                permuted[:, j] = permuted[order, j]
                copies.append(permuted.copy())
        p = predict_proba(np.vstack(copies)).reshape(len(columns), repeats, n)
        for i, j in enumerate(columns):
            drops[j] = [baseline - roc_auc_score(y, p[i, r]) for r in range(repeats)]
    return drops.mean(axis=1)


def _importances(fitted: Fitted, frame: pd.DataFrame, y: np.ndarray, config: PropensityConfig):
    rng = np.random.default_rng(config.random_state)
    keep = np.sort(rng.permutation(len(y))[: config.importance_sample])
    if len(np.unique(y[keep])) < 2:
        return {}
    means = permutation_importances(
        lambda X: fitted.classifier.predict_proba(X)[:, 1],
        frame[fitted.columns].to_numpy()[keep], y[keep],
        config.importance_repeats, config.random_state,
    )  # fmt: skip
    ranked = sorted(zip(fitted.columns, means, strict=True), key=lambda item: -item[1])
    return {name: round(float(value), 6) for name, value in ranked}


def score(activity: Activity, model: str, as_of: pd.Timestamp, fitted: Fitted) -> pd.Series:
    """The model's probabilities for its population as of ``as_of``."""
    scoring = population(model, features_at(activity, as_of))
    if not len(scoring):
        return pd.Series(dtype=float, name=f"{model}_probability")
    return pd.Series(fitted.predict_proba(scoring), index=scoring.index,
                     name=f"{model}_probability")  # fmt: skip


def reusable(trained: ModelResult | None, as_of: pd.Timestamp, config: PropensityConfig) -> bool:
    """Whether a model trained in an earlier run may score as of ``as_of``: trained with
    these settings (the caller compares ``fingerprint``), not after ``as_of``, and less
    than ``retrain_days`` before it."""
    if trained is None or trained.fitted is None or trained.trained_as_of is None:
        return False
    age = (pd.Timestamp(as_of).normalize() - trained.trained_as_of.normalize()).days
    return 0 <= age < config.retrain_days


def fingerprint(config: PropensityConfig, model: str) -> str:
    """The settings a fitted model depends on, and the library that fitted it: a stored
    model trained otherwise is not reused."""
    import hashlib
    import json

    import sklearn

    settings = {**_parameters(config, model), "min_class_count": config.min_class_count,
                "scikit-learn": sklearn.__version__}  # fmt: skip
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run_model(
    activity: Activity,
    model: str,
    as_of: pd.Timestamp,
    config: PropensityConfig,
    trained: ModelResult | None = None,
) -> ModelResult:
    """Backtest, train and score one model as of ``as_of``; skipped with the reason when
    the data cannot support it (``PropensityError``). With ``trained`` (an earlier run's
    result, fitted model included) that is still :func:`reusable`, only score with it."""
    as_of = pd.Timestamp(as_of).normalize()
    days = config.window(model)
    if reusable(trained, as_of, config):
        return replace(trained, as_of=as_of, scores=score(activity, model, as_of, trained.fitted))
    result = ModelResult(model, days, as_of, parameters=_parameters(config, model))
    train_at, backtest_at = as_of - days * DAY, as_of - 2 * days * DAY
    try:
        # Out of time: trained at A - 2w, measured on A - w's customers and what they did.
        old = fit(activity, model, backtest_at, config)
        test, y_test = labelled(activity, model, train_at, days)
        _check_classes(model, y_test, train_at, config)
        p_test = old.predict_proba(test)
        result.backtest = {**metrics(y_test, p_test), "cutoff": f"{train_at:%Y-%m-%d}",
                           "trained_at_cutoff": f"{backtest_at:%Y-%m-%d}"}  # fmt: skip
        result.baseline = metrics(y_test, old.baseline.predict_proba(test))
        result.deciles = decile_table(y_test, p_test)
        result.importances = _importances(old, test, y_test, config)
        # The model that scores: trained on the latest complete window.
        fitted = fit(activity, model, train_at, config)
        result.parameters.update(calibration=fitted.calibration, features=fitted.columns)
        result.training_rows, result.training_positive_rate = fitted.rows, fitted.positive_rate
        result.fitted, result.trained_as_of = fitted, as_of
        result.scores = score(activity, model, as_of, fitted)
    except PropensityError as exc:
        result.skipped = str(exc)
    return result


def _parameters(config: PropensityConfig, model: str) -> dict:
    return {
        "estimator": "HistGradientBoostingClassifier + CalibratedClassifierCV",
        "window_days": config.window(model),
        "max_iter": config.max_iter,
        "learning_rate": config.learning_rate,
        "max_leaf_nodes": config.max_leaf_nodes,
        "min_samples_leaf": config.min_samples_leaf,
        "l2_regularization": config.l2_regularization,
        "calibration_folds": config.calibration_folds,
        "training_snapshots": config.training_snapshots,
        "max_training_rows": config.max_training_rows,
        "random_state": config.random_state,
    }
