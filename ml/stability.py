"""Stable segment ids across runs: match new centroids to the previous run's.

The previous run's centroids are kept in the *prepared* space (interpretable units before
scaling). This run's scaling maps them into its own model space, where the Hungarian
assignment (scipy) pairs each previous segment with at most one new segment at the least
total distance. Matched segments keep their id and name; the rest get new ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score


@dataclass
class PreviousRun:
    """What a run needs to know about the last one."""

    run_id: str
    k: int
    prepared_names: list[str]
    # One row per segment id, one column per prepared feature.
    centroids: pd.DataFrame
    names: dict[int, str]
    # customer id -> segment id of the last scoring.
    assignments: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    # The highest segment id ever used, so retired ids are never reused.
    max_segment_id: int = 0
    # Its fitted preprocessing pipeline, reused so that the space segments live in does not
    # shift with every new day of data (None: fit a new one).
    pipeline: object | None = None


@dataclass
class Matching:
    # label index of this run -> segment id
    segment_ids: dict[int, int]
    matched: dict[int, int]  # label index -> previous segment id
    distances: dict[int, float]
    note: str


def match_segments(
    new_centroids: np.ndarray,
    previous_in_model_space: np.ndarray | None,
    previous_ids: list[int],
    sizes: np.ndarray,
    next_id: int,
) -> Matching:
    """Hungarian assignment of new centroids (rows) to previous ones; new ids by size."""
    k = len(new_centroids)
    matched: dict[int, int] = {}
    distances: dict[int, float] = {}
    if previous_in_model_space is not None and len(previous_ids):
        cost = np.linalg.norm(
            new_centroids[:, None, :] - previous_in_model_space[None, :, :], axis=2
        )
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols, strict=True):
            matched[int(r)] = int(previous_ids[c])
            distances[int(r)] = float(cost[r, c])
        note = f"{len(matched)} of {k} segments matched to the previous run"
    else:
        note = "no comparable previous run: every segment is new"
    segment_ids = dict(matched)
    for label in sorted((i for i in range(k) if i not in matched), key=lambda i: (-sizes[i], i)):
        segment_ids[label] = next_id
        next_id += 1
    return Matching(segment_ids, matched, distances, note)


def compare_assignments(previous: pd.Series, current: pd.Series) -> dict[str, float | int | None]:
    """Share of the customers scored both times whose segment changed, and the ARI."""
    common = previous.index.intersection(current.index)
    if len(common) == 0:
        return {"customers_compared": 0, "switched_share": None, "adjusted_rand_index": None}
    before = previous.loc[common].to_numpy()
    after = current.loc[common].to_numpy()
    return {
        "customers_compared": len(common),
        "switched_share": float(np.mean(before != after)),
        "adjusted_rand_index": float(adjusted_rand_score(before, after)),
    }
