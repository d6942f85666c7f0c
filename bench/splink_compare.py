"""segmint's identity resolution and splink, side by side on the same CRM contact records.

    python bench/splink_compare.py --customers 10000 [--repeat 5] [--out bench/results/splink.md]

Generates data and builds segmint's identity stage with dbt twice: on the CRM contact
records alone (the same input splink gets) and on the whole graph (contacts, orders, devices,
tickets). Then runs splink (DuckDB backend) on the same normalized contact records from
stg_crm__contacts, and scores all three against the generator's truth with the same pairwise
measure, on contact records only. Both start from the same staged contact records (the
stg_crm__contacts view, computed on read). Execution: dbt from its first node's start to its
last node's end (models and their data tests; unit tests excluded), splink from reading the
staged records to the clusters. Wall: each whole command in its own process, start-up and
imports included (splink runs through this script's hidden --splink-only option). splink
is a bench-only dependency: `uv pip install splink` into the environment first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from statistics import median

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import BIN, timed  # noqa: E402
from segmint.evaluate import score_labelled  # noqa: E402


def run_splink(db: Path, clusters_out: Path) -> float:
    """splink from the staged contact records to clusters; returns its execution seconds."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    con = duckdb.connect()
    con.execute(f"attach '{db}' as w (read_only)")
    # Timed from reading the staged (normalized) records, as segmint's identity stage is.
    started = time.perf_counter()
    con.execute("""
        create table contacts as
        select contact_id as unique_id, lower(first_name) as first_name,
               lower(last_name) as last_name, date_of_birth, lower(city) as city,
               lower(postcode) as postcode, email, phone
        from w.staging.stg_crm__contacts
    """)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=False),
            cl.ExactMatch("city"),
            cl.ExactMatch("postcode"),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("last_name", "date_of_birth"),
            block_on("first_name", "last_name"),
            block_on("first_name", "date_of_birth"),
            block_on("last_name", "postcode"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register("contacts"), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email"), block_on("phone")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name", "last_name")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    pairs = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pairs, threshold_match_probability=0.95
    )
    frame = clusters.as_duckdbpyrelation().select("unique_id, cluster_id").to_arrow_table()
    elapsed = time.perf_counter() - started
    con.register("splink_clusters", frame)
    con.execute(f"copy splink_clusters to '{clusters_out}' (format parquet)")
    return elapsed


def execution_span(run_results: Path) -> float:
    """Seconds from the first node's start to the last node's end (models and data tests)."""
    spans = [
        (step["started_at"], step["completed_at"])
        for result in json.loads(run_results.read_text())["results"]
        for step in result["timing"]
        if step["name"] == "execute"
    ]
    first = min(datetime.fromisoformat(start.replace("Z", "+00:00")) for start, _ in spans)
    last = max(datetime.fromisoformat(end.replace("Z", "+00:00")) for _, end in spans)
    return (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "splink")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "splink.md")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of segmint (contacts only) and splink, alternating")  # fmt: skip
    parser.add_argument("--splink-only", nargs=2, type=Path, metavar=("WAREHOUSE", "CLUSTERS"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.splink_only:
        # The splink side in its own process, so that its wall time counts its start-up too.
        db, clusters = args.splink_only
        seconds = run_splink(db, clusters)
        clusters.with_suffix(".json").write_text(json.dumps({"execution_s": seconds}))
        return
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    landing = args.work / "landing"
    timed([str(BIN / "segmint"), "generate", "--customers", str(args.customers), "--seed", "1",
           "--out", str(landing)], {**os.environ}, args.work / "generate.log")  # fmt: skip
    # The contacts-only warehouse: the loader makes every absent source an empty table.
    contacts_landing = args.work / "landing_contacts"
    contacts_landing.mkdir()
    shutil.copy(landing / "crm_contacts.parquet", contacts_landing / "crm_contacts.parquet")

    def dbt_build(name: str, log: str, *select: str) -> tuple[float, float]:
        """`dbt build` (unit tests excluded) on warehouse NAME; (wall seconds, peak MB)."""
        db = args.work / f"{name}.duckdb"
        env = {**os.environ, "SEGMINT_DUCKDB_PATH": str(db), "SEGMINT_DBT_TARGET": "ci"}
        return timed(
            [str(BIN / "dbt"), "build", "--project-dir", str(ROOT), "--profiles-dir", str(ROOT),
             "--target", "ci", "--target-path", str(args.work / f"target_{name}"),
             "--exclude", "test_type:unit", *select],
            env, args.work / log,
        )  # fmt: skip

    identity = ("--select", "path:models/intermediate/identity")
    runs = {}
    for name, source in (("contacts", contacts_landing), ("whole", landing)):
        db = args.work / f"{name}.duckdb"
        env = {**os.environ, "SEGMINT_DUCKDB_PATH": str(db), "SEGMINT_DBT_TARGET": "ci"}
        timed([str(BIN / "segmint"), "load", str(source)], env, args.work / f"load_{name}.log")
        dbt_build(name, f"stg_{name}.log", "--select", "path:seeds", "path:models/staging")
        wall, peak = dbt_build(name, f"identity_{name}.log", *identity)
        run_results = args.work / f"target_{name}" / "run_results.json"
        results = json.loads(run_results.read_text())["results"]
        sql = sum(r["execution_time"] for r in results if r["unique_id"].startswith("model."))
        runs[name] = (db, wall, execution_span(run_results), sql, peak)

    def splink(run: int) -> tuple[float, float, float]:
        out = args.work / f"splink_clusters_{run}.parquet"
        wall, peak = timed(
            [sys.executable, str(Path(__file__).resolve()), "--splink-only",
             str(runs["contacts"][0]), str(out)],
            {**os.environ}, args.work / f"splink_{run}.log",
        )  # fmt: skip
        return json.loads(out.with_suffix(".json").read_text())["execution_s"], wall, peak

    def segmint_again(run: int) -> tuple[float, float]:
        # The same full build again (--full-refresh: the components model is incremental).
        wall, _ = dbt_build("contacts", f"identity_contacts_{run}.log", *identity, "--full-refresh")
        return execution_span(args.work / "target_contacts" / "run_results.json"), wall

    # Repeats alternate which tool goes first; the table gives medians, the runs are listed.
    splink_s, splink_wall, splink_peak = splink(0)
    ours_runs = {"execution": [runs["contacts"][2]], "wall": [runs["contacts"][1]]}
    theirs_runs = {"execution": [splink_s], "wall": [splink_wall]}
    for run in range(1, args.repeat):
        order = ("splink", "segmint") if run % 2 else ("segmint", "splink")
        for tool in order:
            if tool == "splink":
                seconds, wall, _ = splink(run)
                theirs_runs["execution"].append(seconds)
                theirs_runs["wall"].append(wall)
            else:
                span, wall = segmint_again(run)
                ours_runs["execution"].append(span)
                ours_runs["wall"].append(wall)
    db, _wall, _span, sql, peak = runs["contacts"]
    runs["contacts"] = (db, median(ours_runs["wall"]), median(ours_runs["execution"]), sql, peak)
    splink_s, splink_wall = median(theirs_runs["execution"]), median(theirs_runs["wall"])
    clusters = args.work / "splink_clusters_0.parquet"
    con = duckdb.connect()
    con.execute(f"create table splink_clusters as select * from '{clusters}'")
    truth = landing / "truth" / "contacts.parquet"
    con.execute(f"create table truth as select source_system || ':' || contact_id as "
                f"contact_id, person_id from '{truth}'")  # fmt: skip
    scores = {}
    for name, (db, *_rest) in runs.items():
        con.execute(f"attach '{db}' as {name} (read_only)")
        scores[name] = score_labelled(
            con,
            f"""
            select c.customer_id, t.person_id
            from {name}.intermediate.int_identity__record_customers c
            join truth t on c.source_table = 'crm_contacts' and c.source_record_id = t.contact_id
        """,
        )
    theirs = score_labelled(
        con,
        """
        select cast(s.cluster_id as varchar) as customer_id, t.person_id
        from splink_clusters s join truth t on s.unique_id = t.contact_id
    """,
    )
    labels = {
        "contacts": "segmint identity, CRM contacts only (dbt: FS matching + graph)",
        "whole": "segmint identity, whole graph (contacts, orders, devices, tickets)",
    }
    lines = [
        f"{args.customers:,} persons, {theirs.records:,} CRM contact records, same machine "
        f"({os.cpu_count()} cores). Scored on contact records only.",
        "",
        "Execution: from reading the staged contact records to customer ids / clusters (dbt: "
        "first node start to last node end, models and their data tests; splink: its calls "
        "from reading the staged records to the clusters). Wall: the whole command in its own "
        "process, start-up and imports included.",
        "",
        "| tool | execution (s) | wall (s) | model SQL sum (s) | peak RSS (MB) | precision "
        "| recall | F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (_db, wall, span, sql, peak) in runs.items():
        ours = scores[name]
        lines.append(
            f"| {labels[name]} | {span:.1f} | {wall:.1f} | {sql:.1f} | {peak:,.0f} "
            f"| {ours.precision:.4f} | {ours.recall:.4f} | {ours.f1:.4f} |"
        )
    lines.append(
        f"| splink {__import__('splink').__version__} (DuckDB; train + predict + cluster) "
        f"| {splink_s:.1f} | {splink_wall:.1f} | - | {splink_peak:,.0f} "
        f"| {theirs.precision:.4f} | {theirs.recall:.4f} | {theirs.f1:.4f} |"
    )
    if args.repeat > 1:
        listed = {
            "segmint (contacts only)": ours_runs,
            "splink": theirs_runs,
        }
        lines.append("")
        lines.append(
            f"Contacts only, {args.repeat} runs each, alternating which goes first; the table "
            "shows medians (segmint's first run is a first build, the others full refreshes):"
        )
        for tool, times in listed.items():
            lines.append(
                f"- {tool}: execution "
                + ", ".join(f"{t:.1f}" for t in times["execution"])
                + " s; wall "
                + ", ".join(f"{t:.1f}" for t in times["wall"])
                + " s"
            )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines += ["", f"_{stamp}, Python {sys.version.split()[0]}, DuckDB {duckdb.__version__}._"]
    text = "\n".join(lines) + "\n"
    print(text)
    with args.out.open("a") as out:
        out.write("\n" + text)


if __name__ == "__main__":
    main()
