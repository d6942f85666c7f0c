"""Clustering benchmarks (not tests; the figures go to bench/results/ml.md).

    python bench/ml.py quality --warehouse W --truth DIR
    python bench/ml.py scale --warehouse W --customers 1000000

quality: on a warehouse built from generated data (segmint generate / load / dbt build), the
adjusted Rand index (ARI) of the segments against the generator's true archetypes, for the
default configuration and for k fixed at the number of archetypes; the same ARI for a
supervised classifier (gradient boosting, 5-fold cross-validated predictions) on the same
features, which bounds what any segmentation of these features can reach; and stability:
a run on a random 99% of the customers, then a run on all of them with the first as
`previous`, and the share of the 99% who keep their segment.

scale: fit and score N customers, made by resampling the warehouse's customer_features rows
with a small multiplicative jitter (the generator and identity stage at 1M customers take
far longer than the clustering step this measures). Wall time and peak memory.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import cross_val_predict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import append  # noqa: E402
from ml.config import ClusteringConfig  # noqa: E402
from ml.segmentation import fit_segmentation  # noqa: E402
from segmint.clusters import read_features  # noqa: E402
from segmint.evaluate import customer_archetypes  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ml.md"


def _header(title: str) -> str:
    cpus = len(__import__("os").sched_getaffinity(0))
    return (
        f"\n## {title}\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{cpus} CPUs, Python {platform.python_version()}\n\n"
    )


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_quality(warehouse: Path, truth: Path, seed: int) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        features = read_features(con)
        labels = customer_archetypes(con, truth)
    archetypes = labels["archetype"].nunique()
    lines = [
        _header(f"quality: {len(features):,} customers ({warehouse.name})"),
        "| configuration | k | ARI vs archetypes | fit + score |",
        "|---|---:|---:|---:|",
    ]
    base = ClusteringConfig(random_state=seed)
    for name, cfg in (
        ("default (k selected by silhouette in 4..8)", base),
        (f"k fixed at {archetypes}", ClusteringConfig(k=archetypes, random_state=seed)),
        (
            f"gaussian mixture, k fixed at {archetypes}",
            ClusteringConfig(algorithm="gaussian_mixture", k=archetypes, random_state=seed),
        ),
    ):
        started = time.perf_counter()
        result = fit_segmentation(features, cfg)
        seconds = time.perf_counter() - started
        joined = result.assignments.merge(labels, on="customer_id")
        ari = adjusted_rand_score(joined["archetype"], joined["segment_id"])
        lines.append(f"| {name} | {result.run['k']} | {ari:.3f} | {seconds:.1f} s |")

    # What a supervised model reaches on the same features (upper bound for clustering).
    joined = features.merge(labels, on="customer_id")
    for name, columns in (
        ("default features", list(base.numeric_features)),
        ("every numeric column of customer_features", None),
    ):
        x = joined[columns] if columns else joined.select_dtypes("number")
        predicted = cross_val_predict(
            HistGradientBoostingClassifier(random_state=seed),
            x.fillna(-1),
            joined["archetype"],
            cv=5,
        )
        ari = adjusted_rand_score(joined["archetype"], predicted)
        lines.append(f"| supervised ceiling: gradient boosting on {name} | - | {ari:.3f} | - |")

    # Stability: 99% first, then everyone with the first run as previous.
    rng = np.random.default_rng(seed)
    keep = rng.random(len(features)) < 0.99
    first = fit_segmentation(features[keep], base)
    second = fit_segmentation(features, base, first.as_previous())
    both = first.assignments.merge(second.assignments, on="customer_id")
    same = float((both["segment_id_x"] == both["segment_id_y"]).mean())
    lines += [
        "",
        f"Stability: first run on {int(keep.sum()):,} customers (99%), second on all "
        f"{len(features):,} with the first as previous: **{same:.2%}** of the first run's "
        f"customers keep their segment (ARI between the runs "
        f"{second.run['adjusted_rand_index_previous']:.4f}; k {first.run['k']} -> "
        f"{second.run['k']}, {second.run['matching']}).",
        "",
    ]
    return "\n".join(lines)


def synthesize(features: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = features.iloc[rng.integers(0, len(features), n)].reset_index(drop=True)
    for column in rows.select_dtypes("number").columns:
        jitter = np.exp(rng.normal(0, 0.05, n))
        rows[column] = rows[column].astype(float) * jitter
    rows["customer_id"] = [f"syn{i:08d}" for i in range(n)]
    return rows


def bench_scale(warehouse: Path, n: int, seed: int) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        features = read_features(con)
    frame = synthesize(features, n, seed)
    before = _peak_mb()
    config = ClusteringConfig(random_state=seed)
    started = time.perf_counter()
    result = fit_segmentation(frame, config)
    seconds = time.perf_counter() - started
    return "\n".join(
        [
            _header(f"scale: {n:,} customers"),
            f"Synthetic rows resampled from the {len(features):,} customers of {warehouse.name}. "
            f"Default configuration: fit on {config.fit_sample_size:,}, k selected on "
            f"{config.selection_sample_size:,} over {config.k_min}..{config.k_max}, everyone "
            f"scored in chunks of {config.score_chunk_size:,} with reason codes.",
            "",
            "| customers | k | fit + score wall | peak RSS (process) | peak RSS before fit |",
            "|---:|---:|---:|---:|---:|",
            f"| {n:,} | {result.run['k']} | **{seconds:.1f} s** | {_peak_mb():,.0f} MB "
            f"| {before:,.0f} MB |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--warehouse", type=Path, required=True)
    q.add_argument("--truth", type=Path, required=True)
    s = sub.add_parser("scale")
    s.add_argument("--warehouse", type=Path, required=True)
    s.add_argument("--customers", type=int, default=1_000_000)
    for p in (q, s):
        p.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.command == "quality":
        text = bench_quality(args.warehouse, args.truth, args.seed)
    else:
        text = bench_scale(args.warehouse, args.customers, args.seed)
    append(RESULTS, "# Clustering benchmarks\n\nWritten by `bench/ml.py`; newest last.\n", text)


if __name__ == "__main__":
    main()
