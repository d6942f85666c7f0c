"""Reference value sets read from their one source of truth, the seeds in ``seeds/``.

dbt loads the same CSV files into the warehouse; Python reads them here, so the loader's
contract, the quality gates, the generator and the CRM destinations share one list.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

from segmint.config import PROJECT_DIR

SEEDS_DIR = PROJECT_DIR / "seeds"


def seed_path(seed: str) -> Path:
    return SEEDS_DIR / f"{seed}.csv"


@cache
def seed_values(seed: str, column: str) -> tuple[str, ...]:
    """The distinct values of one column of a seed, in file order."""
    path = seed_path(seed)
    if not path.exists():
        raise FileNotFoundError(f"no seed {seed!r} at {path}")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if column not in (reader.fieldnames or []):
            raise KeyError(f"seed {path.name} has no column {column!r}")
        return tuple(dict.fromkeys(row[column] for row in reader))


def consent_purposes() -> tuple[str, ...]:
    """The consent purposes segmint knows (seeds/consent_purposes.csv)."""
    return seed_values("consent_purposes", "consent_purpose")
