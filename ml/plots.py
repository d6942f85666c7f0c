"""PNG plots of a segmentation run: k-selection curves, profile heatmap, 2-D projection."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

from ml.segmentation import SegmentationResult


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def k_selection(result: SegmentationResult) -> bytes:
    metrics = ["silhouette", "davies_bouldin", "calinski_harabasz", "inertia", "bic"]
    present = [m for m in metrics if any(getattr(s, m) is not None for s in result.k_scores)]
    fig, axes = plt.subplots(1, max(len(present), 1), figsize=(3.2 * max(len(present), 1), 2.8))
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, present, strict=False):
        pts = [(s.k, getattr(s, metric)) for s in result.k_scores if getattr(s, metric) is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o")
        ax.axvline(result.run["k"], color="grey", linestyle="--", linewidth=1)
        ax.set_title(metric.replace("_", " "))
        ax.set_xlabel("k")
    fig.suptitle(f"k selection ({result.run['k_selection']}: k={result.run['k']})")
    return _png(fig)


def profile_heatmap(result: SegmentationResult) -> bytes:
    effect = result.effects
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * effect.shape[1], 1.2 + 0.45 * effect.shape[0]))
    limit = max(float(np.abs(effect.to_numpy()).max()), 1e-9)
    image = ax.imshow(effect.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(effect.shape[1]), effect.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(effect.shape[0]), effect.index, fontsize=8)
    fig.colorbar(image, ax=ax, label="segment mean - overall (robust units)")
    ax.set_title("segment profiles")
    return _png(fig)


def projection(result: SegmentationResult) -> bytes:
    sample = result.sample_2d
    names = dict(zip(result.profiles["segment_id"], result.profiles["segment_name"], strict=True))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for segment_id, part in sample.groupby("segment_id"):
        ax.scatter(part["x"], part["y"], s=4, alpha=0.6, label=names.get(segment_id, segment_id))
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.legend(fontsize=7, markerscale=3, loc="best")
    ax.set_title(f"{len(sample):,} customers, 2-D projection")
    return _png(fig)


def write_plots(result: SegmentationResult, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, draw in (
        ("k_selection", k_selection),
        ("profile_heatmap", profile_heatmap),
        ("projection", projection),
    ):
        path = folder / f"{name}.png"
        path.write_bytes(draw(result))
        out[name] = path
    return out
