import shutil
from pathlib import Path

import duckdb
import pandas as pd
from typer.testing import CliRunner

from segmint.cli import app

runner = CliRunner()


def test_generate_then_load_reports_rows_per_table(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMINT_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    out = tmp_path / "landing"
    gen = runner.invoke(app, ["generate", "--customers", "50", "--seed", "1", "--out", str(out),
                              "--messiness", "0.05"])  # fmt: skip
    assert gen.exit_code == 0, gen.output
    assert "web_events" in gen.output
    result = runner.invoke(app, ["load", str(out)])
    assert result.exit_code == 0, result.output
    assert "quarantined" in result.output
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    quarantined = con.execute("select count(*) from raw.quarantined_rows").fetchone()[0]
    con.close()
    assert quarantined > 0
    assert f"{quarantined:,} row(s) quarantined" in " ".join(result.output.split())


def test_load_of_a_broken_file_exits_non_zero_naming_file_and_problem(
    clean_landing, tmp_path, monkeypatch
):
    monkeypatch.setenv("SEGMINT_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(clean_landing.out / "orders.parquet", landing)
    items = pd.read_parquet(clean_landing.out / "order_items.parquet").drop(columns=["quantity"])
    items.to_csv(landing / "order_items.csv", index=False)
    result = runner.invoke(app, ["load", str(landing)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "nothing was loaded" in message
    assert "order_items.csv" in message and "quantity" in message


def test_load_of_a_missing_folder_exits_non_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMINT_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    result = runner.invoke(app, ["load", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_generate_refuses_bad_options(tmp_path):
    result = runner.invoke(app, ["generate", "--customers", "10", "--out", str(tmp_path),
                                 "--format", "xlsx"])  # fmt: skip
    assert result.exit_code == 2
    assert "format must be one of" in result.output


DATA = Path(__file__).resolve().parents[1] / "data"


def test_convert_public_datasets_then_load_every_row(tmp_path, monkeypatch):
    """CDNOW and FEBRL (tests/data) become landing files the contract accepts, row for row."""
    monkeypatch.setenv("SEGMINT_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    out = tmp_path / "landing"
    cdnow = runner.invoke(app, ["convert", "cdnow", str(DATA / "cdnow_sample.txt"),
                                "--out", str(out)])  # fmt: skip
    assert cdnow.exit_code == 0, cdnow.output
    febrl = runner.invoke(app, ["convert", "febrl", str(DATA / "febrl1.csv"), "--out", str(out)])
    assert febrl.exit_code == 0, febrl.output
    assert "1,000 contacts" in febrl.output
    result = runner.invoke(app, ["load", str(out)])
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        orders = con.execute("select count(*), count(distinct customer_ref) from raw.orders")
        assert orders.fetchone() == (6919, 2357)
        assert con.execute("select count(*) from raw.crm_contacts").fetchone()[0] == 1000
        assert con.execute("select count(*) from raw.quarantined_rows").fetchone()[0] == 0
    truth = pd.read_parquet(out / "truth" / "contacts.parquet")
    # febrl1: 500 originals and 500 duplicates of them.
    assert truth["person_id"].nunique() == 500 and len(truth) == 1000
