"""The ``segmint`` command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from segmint import config

app = typer.Typer(
    help="segmint: warehouse-native customer segmentation and activation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
err = Console(stderr=True)


@app.command()
def generate(
    customers: Annotated[int, typer.Option(help="Number of true persons to simulate.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 42,
    out: Annotated[Path | None, typer.Option(help="Output folder [default: landing folder].")] = None,
    messiness: Annotated[
        float, typer.Option(help="Share of rows broken on purpose (0 to 0.5), for quarantine tests.")
    ] = 0.0,
    file_format: Annotated[
        str, typer.Option("--format", help="parquet, csv or jsonl.")
    ] = "parquet",
) -> None:
    """Write deterministic sample landing files and their truth/ folder."""
    from segmint.generate import GeneratorConfig
    from segmint.generate import generate as run_generate

    target = out or config.settings().landing_dir
    try:
        cfg = GeneratorConfig(customers, seed, target, messiness, file_format)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    started = time.perf_counter()
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, transient=True,
    ) as bar:
        task = bar.add_task("generating persons", total=customers)
        result = run_generate(cfg, progress=lambda k: bar.advance(task, k))
    table = Table(title=f"Generated {customers:,} persons into {result.out}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("broken on purpose", justify="right")
    for name, rows in result.rows.items():
        table.add_row(name, f"{rows:,}", f"{result.bad_rows.get(name, 0):,}")
    console.print(table)
    console.print(f"done in {time.perf_counter() - started:.1f} s")


@app.command()
def load(
    landing_dir: Annotated[Path | None, typer.Argument(help="Folder of landing files.")] = None,
) -> None:
    """Validate landing files against the raw-data contract and load them into raw.*."""
    from segmint.load import LoadError
    from segmint.load import load as run_load

    s = config.settings()
    folder = landing_dir or s.landing_dir
    try:
        report = run_load(folder, s.duckdb_path)
    except (LoadError, FileNotFoundError) as exc:
        err.print(f"[red]load failed, nothing was loaded:[/red] {exc}")
        raise typer.Exit(1) from exc
    print_load_report(report, s.duckdb_path)


def print_load_report(report, duckdb_path: Path) -> None:  # noqa: ANN001 - LoadReport
    table = Table(title=f"Load {report.load_id[:8]} into {duckdb_path}")
    for col in ("table", "files", "rows read", "loaded", "quarantined"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name, row in report.totals().items():
        table.add_row(
            name, str(row["files"]), f"{row['read']:,}", f"{row['loaded']:,}",
            f"{row['quarantined']:,}",
        )
    console.print(table)
    for f in report.files:
        if f.skipped_as:
            console.print(f"skipped {f.path.name}: already loaded (same checksum as {f.skipped_as})")
        if f.ignored_columns:
            console.print(
                f"[yellow]warning:[/yellow] {f.path}: columns not in the contract were ignored: "
                + ", ".join(f.ignored_columns)
            )
    for path in report.unrecognized:
        console.print(f"[yellow]warning:[/yellow] {path}: matches no raw table, not loaded")
    quarantined = sum(f.rows_quarantined for f in report.files)
    if quarantined:
        console.print(
            f"[yellow]{quarantined:,} row(s) quarantined[/yellow]: see raw.quarantined_rows "
            "(file, row_number, field, reason, payload)"
        )


@app.command()
def run() -> None:
    """Materialize the whole asset graph in process (load, dbt build, ...)."""
    from orchestration.run import run_all

    config.export_environment()
    result = run_all()
    if not result.success:
        err.print("[red]run failed[/red]: see the messages above or the Dagster UI (make ui)")
        raise typer.Exit(1)
    console.print(f"run {result.run_id} succeeded")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
