"""Running dbt against a throw-away warehouse file, the way a user would."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DBT = str(Path(sys.executable).parent / "dbt")


def dbt(warehouse: Path, target_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DBT, *args, "--project-dir", str(ROOT), "--profiles-dir", str(ROOT),
         "--target", "ci", "--target-path", str(target_path)],
        env={**os.environ, "SEGMINT_DUCKDB_PATH": str(warehouse)},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def dbt_build(warehouse: Path, target_path: Path, *extra: str) -> None:
    result = dbt(warehouse, target_path, "build", "--exclude", "test_type:unit", *extra)
    assert result.returncode == 0, result.stdout[-3000:]


def frame(warehouse: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).df()


def built_warehouse(root: Path, persons: int, seed: int) -> tuple[Path, Path]:
    """Generate, load, score ticket tone and `dbt build` a warehouse; (warehouse, landing)."""
    from segmint.generate import GeneratorConfig, generate
    from segmint.load import load
    from segmint.tone import score_new_tickets

    landing = generate(GeneratorConfig(persons, seed=seed, out=root / "landing")).out
    warehouse = root / "w.duckdb"
    load(landing, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        score_new_tickets(con)
    dbt_build(warehouse, root / "target")
    return warehouse, landing
