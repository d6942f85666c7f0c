"""The ``segmint`` command line."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
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
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.command()
def generate(
    customers: Annotated[int, typer.Option(help="Number of true persons to simulate.")] = 2000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same files.")
    ] = 42,
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: landing folder].")
    ] = None,
    messiness: Annotated[
        float,
        typer.Option(help="Share of rows broken on purpose (0 to 0.5), for quarantine tests."),
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
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
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
    warehouse = s.warehouse()
    try:
        with _holding(s, "segmint load"):
            report = run_load(folder, warehouse, memory_limit=s.load_memory_limit)
    except (LoadError, FileNotFoundError) as exc:
        err.print(f"[red]load failed, nothing was loaded:[/red] {exc}")
        raise typer.Exit(1) from exc
    print_load_report(report, warehouse.describe())


def print_load_report(report, where: str) -> None:
    table = Table(title=f"Load {report.load_id[:8]} into {where}")
    for col in ("table", "files", "rows read", "loaded", "quarantined"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name, row in report.totals().items():
        table.add_row(
            name,
            str(row["files"]),
            f"{row['read']:,}",
            f"{row['loaded']:,}",
            f"{row['quarantined']:,}",
        )
    console.print(table)
    for f in report.files:
        if f.skipped_as:
            console.print(
                f"skipped {f.path.name}: already loaded (same checksum as {f.skipped_as})"
            )
        if f.ignored_columns:
            console.print(
                f"[yellow]warning:[/yellow] {f.path}: columns not in the contract were ignored: "
                + ", ".join(f.ignored_columns)
            )
    for path in report.unrecognized:
        console.print(f"[yellow]warning:[/yellow] {path}: matches no raw table, not loaded")
    suppressed = sum(f.rows_suppressed for f in report.files)
    if suppressed:
        console.print(
            f"{suppressed:,} row(s) of people erased before were not loaded "
            "(privacy.suppression_list; logged in privacy.erasure_log)"
        )
    quarantined = sum(f.rows_quarantined for f in report.files)
    if quarantined:
        console.print(
            f"[yellow]{quarantined:,} row(s) quarantined[/yellow]: see raw.quarantined_rows "
            "(file, row_number, field, reason, payload)"
        )


@app.command()
def validate(
    suite: Annotated[
        list[str] | None, typer.Option("--suite", help="Suite name (repeatable); default: all.")
    ] = None,
    warehouse: Annotated[
        Path | None, typer.Option(help="DuckDB file (default: SEGMINT_DUCKDB_PATH).")
    ] = None,
    docs: Annotated[
        Path | None, typer.Option(help="Data Docs folder (default: SEGMINT_DATA_DOCS_DIR).")
    ] = None,
    accept: Annotated[
        bool,
        typer.Option(
            "--accept",
            help="Record this run's distributions as the new normal (baseline), "
            "after a change in the business you have checked.",
        ),
    ] = False,
) -> None:
    """Run the Great Expectations suites of expectations/; exits 1 on a blocking failure.

    Thresholds, tolerances and severities: expectations/thresholds.yml.
    """
    config.export_environment()
    from rich.markup import escape

    from segmint.quality.suites import SuiteError, load_suites
    from segmint.quality.validate import validate as run_suites
    from segmint.warehouse import DuckDBWarehouse

    s = config.Settings.from_env()
    on_snowflake = warehouse is None and s.dbt_target == "snowflake"
    target = s.warehouse() if on_snowflake else DuckDBWarehouse(warehouse or s.duckdb_path)
    if not target.exists():
        console.print(f"[red]error:[/red] no warehouse at {target.describe()}")
        raise typer.Exit(2)
    try:
        suites = load_suites()
    except SuiteError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if suite:
        unknown = set(suite) - {x.name for x in suites}
        if unknown:
            known = ", ".join(x.name for x in suites)
            console.print(f"[red]error:[/red] unknown suite(s) {sorted(unknown)}; known: {known}")
            raise typer.Exit(2)
        suites = [x for x in suites if x.name in suite]
    docs_dir = docs or s.data_docs_dir
    with _holding(s, "segmint validate", None if on_snowflake else target.path):
        results = run_suites(target, suites, docs_dir=docs_dir, accept=accept)  # it records
    table = Table(title=f"Quality gates on {target.describe()}")
    for col in ("suite", "relation", "rows", "expectations", "blocking failed", "warnings"):
        table.add_column(col, justify="right" if col in ("rows", "expectations") else "left")
    for r in results:
        status = "[red]" + str(len(r.blocking_failures)) + "[/red]" if r.blocking_failures else "0"
        checked = r.skipped or str(len(r.outcomes))
        table.add_row(
            r.suite.name, r.suite.relation, str(r.rows), checked, status, str(len(r.warnings))
        )
    console.print(table)
    for r in results:
        for o in r.blocking_failures:
            console.print(f"[red]BLOCKING[/red] {escape(o.describe())}")
        for o in r.warnings:
            console.print(f"[yellow]warning[/yellow] {escape(o.describe())}")
    console.print(f"Data Docs: {docs_dir / 'index.html'}")
    if accept:
        console.print("accepted: this run's distributions are now part of the baseline")
    _exit(1 if any(r.blocking_failures for r in results) else 0)


BUSY_EXIT_CODE = 3


@contextlib.contextmanager
def _holding(s: config.Settings, command: str, path: Path | None = None):
    """Hold the warehouse for writing (one writer); refuse at once, exit 3, if it is held."""
    from segmint.warehouse import DuckDBWarehouse, WarehouseBusy

    warehouse = DuckDBWarehouse(path) if path else s.warehouse()
    try:
        with warehouse.exclusive(command):
            yield
    except WarehouseBusy as exc:
        err.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(BUSY_EXIT_CODE) from exc


@contextlib.contextmanager
def _connected(s: config.Settings, command: str, path: Path | None = None, step: str = ""):
    """Hold the target's warehouse and open a connection to it: the DuckDB file (``path``
    when given), or on the snowflake target a Snowflake session for the job's ``step`` (its
    role, warehouse and query tag; no DuckDB file is read)."""
    if path is None and s.dbt_target == "snowflake":
        with s.warehouse().connect(step=step or command.removeprefix("segmint ")) as con:
            yield con
        return
    import duckdb

    with _holding(s, command, path), duckdb.connect(str(path or s.duckdb_path)) as con:
        yield con


def _exit(code: int) -> None:
    """Exit with ``code``; the interpreter's teardown writes nothing to the terminal.

    Great Expectations leaves DuckDB type objects in its caches, and at teardown nanobind
    lists them as "leaks" over a screen of noise. Once the command has printed everything,
    standard error is pointed at /dev/null for the teardown alone (atexit runs before it).
    """

    def quiet_teardown() -> None:
        sys.stderr.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)

    atexit.register(quiet_teardown)
    raise typer.Exit(code)


@app.command()
def run(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug events.")] = False,
) -> None:
    """Materialize the whole asset graph in process; exits 1 if anything fails."""
    s = config.export_environment()
    from orchestration.run import run_all

    with _holding(s, "segmint run"):
        summary = run_all(verbose=verbose)
    _print_run(summary)
    _exit(0 if summary.success else 1)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Persons to simulate.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    messiness: Annotated[float, typer.Option(help="Share of rows broken on purpose.")] = 0.01,
) -> None:
    """Generate sample data into the landing folder, run the pipeline, print a summary."""
    s = config.export_environment()
    with _holding(s, "segmint demo"):
        summary = _demo(s, customers, seed, messiness)
    _exit(0 if summary.success else 1)


def _demo(s: config.Settings, customers: int, seed: int, messiness: float):
    """Generate, point the destinations at a local emulator, run the job; the run summary."""
    from orchestration.run import run_all
    from segmint.generate import GeneratorConfig
    from segmint.generate import generate as run_generate

    console.rule("1/2 generate sample data")
    result = run_generate(GeneratorConfig(customers, seed, s.landing_dir, messiness))
    console.print(
        f"{customers:,} persons -> {sum(result.rows.values()):,} rows in {s.landing_dir} "
        f"({sum(result.bad_rows.values()):,} broken on purpose)"
    )
    # The CRM sync goes to the local emulator unless real destinations are configured.
    from segmint.sync.emulator import CrmEmulator, seed_from_landing

    with CrmEmulator(port=int(os.environ.get("SEGMINT_CRM_EMULATOR_PORT", "0"))) as crm:
        crm_env, emulated = _point_destinations_at(crm, seed_from_landing(s.landing_dir))
        _forget_synced_state(s.warehouse(), emulated)
        console.print(f"CRM emulator on {crm.url} ({', '.join(sorted(crm_env))} set for the run)")
        console.rule("2/2 run the pipeline (Dagster, in process)")
        summary = run_all()
        console.rule("summary")
        _print_demo_summary(summary, s)
        _print_crm_summary(crm, s)
    return summary


def _forget_synced_state(warehouse, destinations: list[str]) -> None:
    """The demo's emulator starts empty each time: forget what was synced to the last one."""
    from segmint import tables

    if not destinations or not warehouse.exists():
        return
    with warehouse.connect(step="demo") as con:
        if tables.exists(con, "sync", "synced_records"):
            con.execute(
                "delete from sync.synced_records where destination in "
                f"({', '.join('?' for _ in destinations)})",
                destinations,
            )


def _point_destinations_at(crm, seed: dict) -> tuple[list[str], list[str]]:
    """Seed the emulator and point every destination whose URL is unset at it.

    Returns the variables set and the destinations now pointing at the emulator (the file
    destination, which needs no URL, keeps its state).
    """
    from segmint.sync.config import load_destinations

    state = crm.state
    crm.seed(seed)
    demo_secret = "segmint-demo-webhook-secret"
    state.webhook_secret = os.environ.get("SEGMINT_WEBHOOK_SECRET", demo_secret)
    set_here, emulated = [], []
    for d in load_destinations():
        if d.url_env and not os.environ.get(d.url_env):
            path = "/webhook" if d.type == "webhook" else ""
            os.environ[d.url_env] = crm.url + path
            set_here.append(d.url_env)
            emulated.append(d.name)
            for var, value in ((d.token_env, "demo-token"), (d.secret_env, demo_secret)):
                if var and not os.environ.get(var):
                    os.environ[var] = value
                    set_here.append(var)
    return set_here, emulated


def _print_crm_summary(crm, s: config.Settings) -> None:
    """What reached the (emulated) CRMs: contacts carrying segmint tags, and the audit."""
    from segmint import tables

    state = crm.state
    with state.lock:
        hubspot = [c["properties"].get("segmint_segments") or "" for c in state.hubspot.values()]
        salesforce = [c.get("Segmint_Segments__c") or "" for c in state.salesforce.values()]
        webhook = sum(len(b.get("records", [])) for b in state.webhook)
        calls = len(state.requests)
    table = Table(title=f"CRM sync (emulator {crm.url}, {calls:,} API requests)")
    for col in ("destination", "records with segmint tags", "example"):
        table.add_column(col)
    for name, values in (("hubspot", hubspot), ("salesforce", salesforce)):
        tagged = [v for v in values if "segmint_" in v]
        table.add_row(name, f"{len(tagged):,} of {len(values):,} contacts", (tagged or [""])[0])
    table.add_row("webhook", f"{webhook:,} records received", "")
    console.print(table)
    rows = []
    warehouse = s.warehouse()
    if warehouse.exists():
        with warehouse.connect(read_only=True, step="summary") as con:
            if tables.exists(con, "sync", "sync_runs"):
                rows = con.execute(
                    "select destination, status, creates + updates + removals + erasures, "
                    "succeeded, rejected, api_calls from sync.sync_runs "
                    "where run_id in (select max(run_id) from sync.sync_runs group by destination)"
                ).fetchall()
    for name, status, changes, ok, rejected, api_calls in rows:
        console.print(
            f"sync {name}: {status}, {changes:,} changes, {ok:,} confirmed, {rejected:,} "
            f"rejected, {api_calls:,} API calls (sync.sync_runs)"
        )


def _warehouse_totals(warehouse) -> tuple[dict[str, tuple[int, int]], int | None]:
    """Rows loaded and quarantined per raw table over all loads, and the customer count."""
    from segmint import tables

    if not warehouse.exists():
        return {}, None
    with warehouse.connect(read_only=True, step="summary") as con:
        rows = []
        if tables.exists(con, "raw", "loaded_files"):
            rows = con.execute(
                "select source_table, sum(rows_loaded), sum(rows_quarantined) "
                "from raw.loaded_files group by 1"
            ).fetchall()
        customers = None
        if tables.exists(con, "marts", "dim_customers"):
            customers = con.execute("select count(*) from marts.dim_customers").fetchall()[0][0]
    return {t.lower(): (int(a), int(b)) for t, a, b in rows}, customers


def _segment_sizes(warehouse) -> list[tuple[str, str, int]]:
    """Customers per segment (marts.customer_segments), largest first within each type."""
    from segmint import tables

    if not warehouse.exists():
        return []
    with warehouse.connect(read_only=True, step="summary") as con:
        if not tables.exists(con, "marts", "customer_segments"):
            return []
        return con.execute(
            "select segment_type, segment_name, count(*) from marts.customer_segments "
            "group by segment_type, segment_name order by segment_type, count(*) desc, "
            "segment_name"
        ).fetchall()


def _print_run(summary) -> None:
    status = "[green]succeeded[/green]" if summary.success else "[red]FAILED[/red]"
    console.print(
        f"run {summary.run_id} {status}: {len(summary.materialized)} assets materialized, "
        f"{summary.checks_passed} checks passed, {len(summary.checks_warned)} warned, "
        f"{len(summary.checks_failed)} failed"
    )
    for check in summary.checks_warned:
        console.print(f"[yellow]warning:[/yellow] {check}")
    for name in summary.not_configured:
        console.print(f"sync {name}: not configured, skipped (docs/crm-sync.md)")
    for step in summary.failed_steps:
        err.print(f"[red]failed step:[/red] {step}")
    for check in summary.checks_failed:
        err.print(f"[red]failed check:[/red] {check}")


def _print_demo_summary(summary, s: config.Settings) -> None:
    from segmint.contracts import TABLES

    warehouse = s.warehouse()
    totals, customers = _warehouse_totals(warehouse)
    table = Table(title="Raw tables: this run and all loads")
    for col in ("table", "loaded", "quarantined", "total loaded", "total quarantined"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name in TABLES:
        now = summary.loaded.get(name, (0, 0))
        total = totals.get(name, (0, 0))
        table.add_row(name, f"{now[0]:,}", f"{now[1]:,}", f"{total[0]:,}", f"{total[1]:,}")
    console.print(table)
    _print_run(summary)
    console.print(f"dbt nodes built: {summary.dbt_nodes_built}")
    if customers is not None:
        console.print(f"customers resolved: {customers:,} (marts.dim_customers)")
    sizes = _segment_sizes(warehouse)
    if sizes:
        segments = Table(title="Segments (marts.customer_segments)")
        for col in ("type", "segment", "customers"):
            segments.add_column(col, justify="right" if col == "customers" else "left")
        for kind, name, n in sizes:
            segments.add_row(kind, name, f"{n:,}")
        console.print(segments)
    console.print(f"warehouse: {warehouse.describe()}")
    console.print("quarantined rows: select * from raw.quarantined_rows")
    console.print("open the UI: make ui, then http://127.0.0.1:3000")


@app.command("crm-emulator")
def crm_emulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    seed_landing: Annotated[
        Path | None, typer.Option(help="Landing folder whose CRM contacts the CRMs hold.")
    ] = None,
    requests_per_second: Annotated[
        float | None, typer.Option(help="API rate limit to enforce (429 above it).")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option(help="Check the webhook's HMAC signature with this secret.")
    ] = None,
) -> None:
    """Serve the local HubSpot / Salesforce / webhook emulator until Ctrl-C."""
    from segmint.sync.emulator import CrmEmulator, seed_from_landing

    crm = CrmEmulator(port=port)
    crm.state.requests_per_second = requests_per_second
    crm.state.webhook_secret = webhook_secret
    if seed_landing:
        crm.seed(seed_from_landing(seed_landing))
    console.print(
        f"CRM emulator on {crm.url}: HubSpot /crm/v3/..., Salesforce /services/data/..., "
        f"webhook /webhook; inspect {crm.url}/_emulator/contacts?crm=hubspot"
    )
    # Stop on SIGTERM too (a parent may have set it to be ignored, which children inherit).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        crm.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        crm.server.server_close()


@app.command()
def sync(
    destination: Annotated[
        list[str] | None, typer.Option(help="Only this destination (repeatable).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan; send nothing.")] = False,
    force: Annotated[bool, typer.Option(help="Apply even above max_change_share.")] = False,
    warehouse: Annotated[
        Path | None,
        typer.Option(help="A DuckDB file [default: the target's warehouse, Snowflake's too]."),
    ] = None,
) -> None:
    """Sync segment tags to the CRM destinations: plan against the last state, apply changes."""
    from segmint.sync.config import DestinationError, load_destinations
    from segmint.sync.engine import sync_concurrently

    s = config.settings()
    where = warehouse or s.warehouse().describe()
    try:
        chosen = [d for d in load_destinations() if not destination or d.name in destination]
        unknown = set(destination or []) - {d.name for d in chosen}
        if unknown:
            raise DestinationError(f"unknown destination(s): {', '.join(sorted(unknown))}")
    except DestinationError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    table = Table(title=f"CRM sync{' (dry run)' if dry_run else ''} from {where}")
    for col in ("destination", "status", "in state", "desired", "create", "update", "remove",
                "erase", "+tags", "-tags", "confirmed", "rejected", "API calls"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("destination", "status") else "right")
    # Every destination at once, each within its own rate limit (sync_concurrently).
    with _connected(s, "segmint sync", warehouse) as con:
        results = sync_concurrently(con, chosen, os.environ, dry_run=dry_run, force=force)
    failed = False
    for result in results:
        name = result.destination.name
        if result.not_configured:
            table.add_row(name, "not configured", *[""] * 11)
            continue
        if result.report is None:
            err.print(f"[red]error:[/red] {result.error}")
            table.add_row(name, "failed", *[""] * 11)
            failed = True
            continue
        r = result.report
        p = r.plan.summary()
        table.add_row(name, r.status, *(f"{p[k]:,}" for k in (
            "records_in_state", "desired_records", "creates", "updates", "removals",
            "erasures", "tags_added", "tags_removed")),
            f"{r.succeeded:,}", f"{r.rejected:,}", f"{r.stats.api_calls:,}")  # fmt: skip
        if dry_run:
            for c in r.plan.changes[:5]:
                console.print(f"  {name} {c.action} {c.record_key}: +{c.add} -{c.remove}")
    console.print(table)
    raise typer.Exit(1 if failed else 0)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 3000,
) -> None:
    """Start the Dagster UI (and its daemon) on 127.0.0.1."""
    import os
    import shutil

    config.export_environment()
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    args = [dagster, "dev", "-h", "127.0.0.1", "-p", str(port), "-m", "orchestration.definitions"]
    os.execvpe(dagster, args, os.environ.copy())


privacy_app = typer.Typer(
    help="Erasure requests and the audit of a person's traces (segmint/privacy.py).",
    no_args_is_help=True,
)
app.add_typer(privacy_app, name="privacy")


def _written_folders(s: config.Settings) -> list[Path]:
    """Where segmint writes files: Data Docs, the BI copy, every file destination's folder."""
    from segmint.sync.config import load_destinations

    folders = [s.data_docs_dir, s.bi_duckdb_path]
    for d in load_destinations():
        if d.type == "file" and d.check_configured(os.environ):
            folders.append(d.export_dir(os.environ) / d.name)
    return [f for f in folders if f.exists()]


@privacy_app.command("erase")
def privacy_erase() -> None:
    """Carry out the loaded erasure requests now (the daily job does it on every run)."""
    from segmint.privacy import erase
    from segmint.sync.config import load_destinations

    s = config.export_environment().check()
    with _holding(s, "segmint privacy erase"):
        with _connected(s, "segmint privacy erase", step="erasure") as con:
            report = erase(con, s.pii_salt, folders=_written_folders(s),
                           destinations=load_destinations(), environ=os.environ)  # fmt: skip
        # The deleted values leave the file's freed blocks too (DuckDB; see compact()).
        compaction = s.warehouse().compact() if report.total_rows else None
    console.print(
        f"{len(report.requests)} request(s) carried out, {report.customers} customer(s): "
        f"{report.total_rows:,} rows and {len(report.files)} file(s) removed"
    )
    for name, outcome in sorted(report.destinations.items()):
        console.print(f"  {name}: {outcome}")
    if compaction is not None:
        console.print(f"warehouse file rewritten without the deleted rows: {compaction.path}")
    console.print("evidence: privacy.erasure_log (no personal data)")


@privacy_app.command("store-salt")
def privacy_store_salt() -> None:
    """Store SEGMINT_PII_SALT in the warehouse (privacy.pii_salt), where the hashing SQL reads it.

    On DuckDB, dbt's connection does this by itself; on Snowflake run it once, as a role that
    may create the privacy schema, before the first dbt run. The salt is sent as a bound
    parameter and never printed.
    """
    from segmint.privacy import store_salt

    s = config.settings()
    try:
        s.check()
        if s.dbt_target == "snowflake":
            from segmint.snowflake import connect

            with contextlib.closing(connect(s.snowflake)) as con:
                store_salt(con, s.pii_salt)
            where = "Snowflake"
        else:
            import duckdb

            with (
                _holding(s, "segmint privacy store-salt"),
                duckdb.connect(str(s.duckdb_path)) as con,
            ):
                store_salt(con, s.pii_salt)
            where = str(s.duckdb_path)
    except config.ConfigError as exc:
        err.print(f"[red]refused:[/red] {exc}")
        _exit(2)
    console.print(f"PII salt stored in privacy.pii_salt ({where})")


@privacy_app.command("audit")
def privacy_audit(
    email: Annotated[str, typer.Argument(help="The person's email.")],
    phone: Annotated[str | None, typer.Option(help="Their phone (any notation).")] = None,
    text: Annotated[
        list[str] | None, typer.Option(help="Any other value to look for (a name); repeatable.")
    ] = None,
    warehouse: Annotated[
        Path | None,
        typer.Option(help="A DuckDB file [default: the target's warehouse, Snowflake's too]."),
    ] = None,
) -> None:
    """Search every table, view and text column, and the files segmint writes, for a person.

    Exits 0 when nothing is found, 1 when traces remain (listed, without the values).
    The salted hashes in privacy.suppression_list are the one intended trace and are skipped.
    """
    import re

    from segmint.privacy import audit, hash_identifier, normalize_email
    from segmint.warehouse import DuckDBWarehouse

    s = config.settings()
    target = DuckDBWarehouse(warehouse) if warehouse else s.warehouse()
    needles = {"email": normalize_email(email) or email}
    needles["email hash"] = hash_identifier(s.pii_salt, needles["email"])
    for i, value in enumerate(text or []):
        needles[f"text {i + 1}"] = value
    digits = re.sub(r"[^0-9]", "", phone or "")[-9:] or None  # national digits, any prefix
    with target.connect(read_only=True, step="privacy audit") as con:
        traces = audit(con, needles, phone_digits=digits, files=_written_folders(s))
    if not traces:
        console.print(f"no trace of the person in {target.describe()} or the files segmint writes")
        _exit(0)
    table = Table("where", "what", "rows")
    for trace in traces:
        table.add_row(trace.where, trace.needle, str(trace.rows))
    console.print(table)
    _exit(1)


snowflake_app = typer.Typer(help="Set up the Snowflake target (docs/snowflake.md).",
                            no_args_is_help=True)  # fmt: skip
app.add_typer(snowflake_app, name="snowflake")


@snowflake_app.command("grants")
def snowflake_grants(
    user: Annotated[
        str | None, typer.Option(help="The service user that runs segmint (granted the roles).")
    ] = None,
) -> None:
    """Print the SQL an administrator runs once: roles, schemas and their owners, read access
    for the sync and BI roles, warehouse usage (SNOWFLAKE_DATABASE, SNOWFLAKE_WAREHOUSE)."""
    from segmint.snowflake import grants_sql

    parameters = dict(config.settings().snowflake)
    missing = [config.SNOWFLAKE_VARS[k] for k in ("database", "warehouse") if not parameters.get(k)]
    if missing:
        err.print(f"[red]error:[/red] set {' and '.join(missing)}")
        raise typer.Exit(2)
    for statement in grants_sql(parameters["database"], parameters["warehouse"], user):
        typer.echo(statement)


evaluate_app = typer.Typer(help="Measure the pipeline against known truth.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


convert_app = typer.Typer(
    help="Turn a public reference dataset into landing files (segmint/datasets.py).",
    no_args_is_help=True,
)
app.add_typer(convert_app, name="convert")


_OutOption = Annotated[
    Path | None, typer.Option(help="Landing folder (default: SEGMINT_LANDING_DIR).")
]


def _convert(convert, source, out: Path | None, written: str) -> None:
    """Run a dataset converter into the landing folder; a file it cannot read fails the
    command (exit 2) with the converter's message, which names file, line and field."""
    from segmint.datasets import DatasetError

    folder = out or config.settings().landing_dir
    try:
        rows = convert(source, folder)
    except (DatasetError, FileNotFoundError) as exc:
        err.print(f"[red]conversion failed, nothing was written:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{rows:,} {written.format(folder=folder)}")


_CONTACTS_WRITTEN = "contacts -> {folder}/crm_contacts.csv (truth in {folder}/truth)"


@convert_app.command("cdnow")
def convert_cdnow(
    path: Annotated[Path, typer.Argument(help="The CDNOW purchase file (whitespace-separated).")],
    out: _OutOption = None,
) -> None:
    """CDNOW purchases as orders only (no CRM, events, tickets or consent)."""
    from segmint.datasets import landing_from_cdnow

    _convert(landing_from_cdnow, path, out, "orders -> {folder}/orders.csv")


@convert_app.command("people")
def convert_people(
    path: Annotated[Path, typer.Argument(help="A labelled person CSV (record id, person, names).")],
    out: _OutOption = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            "-c",
            metavar="FIELD=HEADER",
            help="Read FIELD (a contact field, unique_id or cluster; an unknown one lists them) "
            "from the column HEADER; repeatable.",
        ),
    ] = None,
) -> None:
    """Labelled person records (unique_id, cluster, names, ...) as CRM contacts, with truth/."""
    from functools import partial

    from segmint.evaluate import landing_from_labelled_people

    columns = {}
    for pair in column or []:
        field, sep, header = pair.partition("=")
        if not sep or not field.strip() or not header.strip():
            err.print(f"[red]--column {pair}: expected FIELD=HEADER[/red]")
            raise typer.Exit(2)
        columns[field.strip()] = header.strip()
    convert = partial(landing_from_labelled_people, columns=columns)
    _convert(convert, path, out, _CONTACTS_WRITTEN)


@convert_app.command("febrl")
def convert_febrl(
    paths: Annotated[list[Path], typer.Argument(help="FEBRL CSV files, one source system each.")],
    out: _OutOption = None,
) -> None:
    """FEBRL person records as CRM contacts only (without soc_sec_id), with truth/."""
    from segmint.datasets import landing_from_febrl

    _convert(landing_from_febrl, paths, out, _CONTACTS_WRITTEN)


@evaluate_app.command("identity")
def evaluate_identity_cmd(
    truth: Annotated[Path, typer.Option(help="The generator's truth/ folder.")],
    warehouse: Annotated[
        Path | None,
        typer.Option(help="A DuckDB file [default: the target's warehouse, Snowflake's too]."),
    ] = None,
) -> None:
    """Pairwise precision, recall and F1 of identity resolution against generator truth."""
    from segmint.evaluate import blocking_recall, evaluate_identity, match_threshold

    path = warehouse or config.settings().warehouse()
    where = path.describe() if hasattr(path, "describe") else path
    try:
        scores = evaluate_identity(path, truth)
        true_pairs, blocked, candidates = blocking_recall(path, Path(truth) / "contacts.parquet")
        threshold = match_threshold(path)
    except FileNotFoundError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    table = Table(title=f"Identity resolution in {where} against {truth}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in (
        ("pairwise precision", f"{scores.precision:.4f}"),
        ("pairwise recall", f"{scores.recall:.4f}"),
        ("pairwise F1", f"{scores.f1:.4f}"),
        ("records evaluated", f"{scores.records:,}"),
        ("true persons", f"{scores.persons:,}"),
        ("customers", f"{scores.customers:,}"),
        ("over-merged customers (hold several persons)", f"{scores.over_merged_customers:,}"),
        ("under-merged persons (split over customers)", f"{scores.under_merged_persons:,}"),
        ("records left anonymous", f"{scores.unplaced_records:,}"),
        (
            "blocking recall (true contact pairs among the candidates)",
            f"{blocked / true_pairs:.4f} ({blocked:,} of {true_pairs:,})" if true_pairs else "-",
        ),
        ("candidate pairs compared", f"{candidates:,}"),
    ):
        table.add_row(name, value)
    if threshold:
        expected = (
            f"expected precision {threshold['expected_precision'] or 0:.4f}, "
            f"recall {threshold['expected_recall'] or 0:.4f}"
        )
        table.add_row(
            f"match threshold ({threshold['threshold_method']})",
            f"{threshold['match_threshold']:.4f}: {threshold['linked_pairs']:,} of "
            f"{threshold['scored_pairs']:,} scored pairs linked, {expected}",
        )
    console.print(table)


@evaluate_app.command("segments")
def evaluate_segments_cmd(
    truth: Annotated[Path, typer.Option(help="The generator's truth/ folder.")],
    warehouse: Annotated[
        Path | None,
        typer.Option(help="A DuckDB file [default: the target's warehouse, Snowflake's too]."),
    ] = None,
) -> None:
    """Adjusted Rand index of the clustering asset's segments against the true archetypes."""
    import duckdb

    from segmint.evaluate import evaluate_segments

    path = warehouse or config.settings().warehouse()
    where = path.describe() if hasattr(path, "describe") else path
    try:
        scores = evaluate_segments(path, truth)
    except FileNotFoundError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except duckdb.CatalogException as exc:
        err.print(f"[red]error:[/red] {where} has no ml.customer_clusters: run the pipeline first")
        raise typer.Exit(2) from exc
    table = Table(title=f"Segments in {where} against the archetypes in {truth}")
    table.add_column("segment")
    for archetype in scores.crosstab.columns:
        table.add_column(str(archetype), justify="right")
    for name, row in scores.crosstab.iterrows():
        table.add_row(str(name), *(f"{v:,}" for v in row))
    console.print(table)
    console.print(
        f"adjusted Rand index {scores.adjusted_rand_index:.4f} over {scores.customers:,} "
        f"customers ({scores.segments} segments, {scores.archetypes} archetypes)"
    )


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
