"""Appending a bench run to its results file (bench/results/*.md): newest last."""

from __future__ import annotations

from pathlib import Path


def append(results: Path, title: str, text: str) -> None:
    """Print ``text`` and append it to ``results``, created with ``title`` if missing."""
    print(text)
    results.parent.mkdir(parents=True, exist_ok=True)
    if not results.exists():
        results.write_text(title)
    with results.open("a") as fh:
        fh.write(text)
