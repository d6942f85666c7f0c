"""The public dataset converters read every layout their datasets are published in."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from segmint.cli import app
from segmint.datasets import DatasetError, landing_from_cdnow

DATA = Path(__file__).resolve().parents[1] / "data"


def test_the_cdnow_master_layout_gives_the_same_orders_as_the_sample(tmp_path):
    # The master file (four columns, a header line) holds the whole cohort; the sample
    # (five columns, no header) is a tenth of it, its customers under the same ids.
    master = landing_from_cdnow(DATA / "cdnow_master_excerpt.txt", tmp_path / "master")
    sample = landing_from_cdnow(DATA / "cdnow_sample.txt", tmp_path / "sample")
    assert master == 427 and sample == 6919
    from_master = pd.read_csv(tmp_path / "master" / "orders.csv")
    from_sample = pd.read_csv(tmp_path / "sample" / "orders.csv")
    assert from_master["customer_ref"].nunique() == 100
    assert not from_master["customer_ref"].str.contains("customer").any()
    shared = set(from_master["customer_ref"]) & set(from_sample["customer_ref"])
    assert len(shared) == 7  # the sample customers among master ids 1-100 (11 purchases)
    assert len(from_sample[from_sample["customer_ref"].isin(shared)]) == 11
    in_master = from_master[from_master["customer_ref"].isin(shared)]
    in_sample = from_sample[from_sample["customer_ref"].isin(shared)]
    pd.testing.assert_frame_equal(
        in_master.sort_values("order_id").reset_index(drop=True),
        in_sample.sort_values("order_id").reset_index(drop=True),
    )
    # The master file as its authors publish it: no header line.
    bare = tmp_path / "CDNOW_master.txt"
    bare.write_text("".join((DATA / "cdnow_master_excerpt.txt").read_text().splitlines(True)[1:]))
    assert landing_from_cdnow(bare, tmp_path / "bare") == 427
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "bare" / "orders.csv"), from_master)


def test_a_cdnow_file_with_a_bad_line_names_the_line_and_field(tmp_path):
    bad = tmp_path / "cdnow.txt"
    bad.write_text("00001 19970101 1 11.77\n00002 1997011x 1 12.00\n00003 19970102 2 20.00\n")
    with pytest.raises(DatasetError, match=r"cdnow.txt: line 2, field date: '1997011x'"):
        landing_from_cdnow(bad, tmp_path / "out")
    assert not (tmp_path / "out" / "orders.csv").exists()
    short = tmp_path / "short.txt"
    short.write_text("00001 19970101 11.77\n")
    with pytest.raises(DatasetError, match="line 1 has 3 columns"):
        landing_from_cdnow(short, tmp_path / "out")
    result = CliRunner().invoke(app, ["convert", "cdnow", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "line 2, field date" in result.output


def test_a_febrl_file_missing_a_column_or_with_a_foreign_id_is_refused(tmp_path):
    from segmint.datasets import landing_from_febrl

    header = ("rec_id, given_name, surname, street_number, address_1, address_2, suburb, "
              "postcode, state, date_of_birth, soc_sec_id\n")  # fmt: skip
    good = "rec-1-org, mia, berry, 4, giblin street, , bittern, 4814, vic, 19900506, 1\n"
    foreign = tmp_path / "foreign.csv"
    foreign.write_text(header + good + "person-2, zed, berry, 4, giblin street, , bittern, "
                       "4814, vic, 19510120, 2\n")  # fmt: skip
    with pytest.raises(DatasetError, match=r"foreign.csv: line 3, field rec_id: 'person-2'"):
        landing_from_febrl([foreign], tmp_path / "out")
    no_suburb = tmp_path / "no_suburb.csv"
    no_suburb.write_text(header.replace(" suburb,", "") + good.replace(" bittern,", ""))
    with pytest.raises(DatasetError, match=r"missing FEBRL column\(s\) suburb"):
        landing_from_febrl([no_suburb], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written
    result = CliRunner().invoke(
        app, ["convert", "febrl", str(foreign), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "field rec_id" in result.output
    ok = tmp_path / "ok.csv"
    ok.write_text(header + good)
    assert landing_from_febrl([ok], tmp_path / "out") == 1


def test_labelled_people_in_another_layout_and_with_text_labels_convert(tmp_path):
    # splink's historical_50k layout: no email or city, a birth place and a fake postcode,
    # and the true person as a Wikidata id rather than a number.
    people = tmp_path / "historical_people.csv"
    people.write_text(
        "unique_id,cluster,full_name,first_name,surname,dob,birth_place,postcode_fake,gender\n"
        "Q1-1,Q1,john smith,john,smith,1855-01-01,london,se1 7pb,male\n"
        "Q1-2,Q1,jon smith,jon,smith,1855-01-01,londn,se1 7pb,male\n"
        "Q9-1,Q9,mary jones,mary,jones,1901-03-04,leeds,ls1 4ap,female\n"
    )
    contacts = _converted_people(people, tmp_path / "o")
    assert contacts["city"].tolist() == ["london", "londn", "leeds"]
    assert contacts["postcode"].tolist() == ["se1 7pb", "se1 7pb", "ls1 4ap"]
    assert contacts["date_of_birth"].tolist() == ["1855-01-01", "1855-01-01", "1901-03-04"]
    assert set(contacts["email"]) == {""}
    truth = pd.read_parquet(tmp_path / "o" / "truth" / "contacts.parquet")
    assert truth["person_id"].tolist() == [0, 0, 1]
    # fake_1000's numeric clusters stay the person ids they are.
    from segmint.evaluate import landing_from_labelled_people

    assert landing_from_labelled_people(DATA / "fake_1000.csv", tmp_path / "f") == 1000
    fake = pd.read_csv(DATA / "fake_1000.csv")
    truth = pd.read_parquet(tmp_path / "f" / "truth" / "contacts.parquet")
    assert truth["person_id"].tolist() == fake["cluster"].tolist()
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("unique_id,cluster,city\n1,1,leeds\n")
    refused = CliRunner().invoke(
        app, ["convert", "people", str(unnamed), "--out", str(tmp_path / "u")]
    )
    assert refused.exit_code == 2 and "needs unique_id, cluster and a name column" in refused.output
    assert not (tmp_path / "u").exists()


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_labelled_people_under_other_headers_with_day_first_dates_convert(tmp_path, delimiter):
    # A voter-roll style export: its own header names, birth dates day first, a full name
    # as well as its parts, and the true person under another name; from a spreadsheet
    # that may delimit by ';' or tab.
    people = tmp_path / "voters.csv"
    people.write_text(
        (
            "Record ID,Person-ID,Given Name,Family Name,Full Name,Zip Code,Town,Birth Date\n"
            "a1,7,ann,lee,ann lee,2000,sydney,03/04/1990\n"
            "a2,7,anne,lee,anne lee,2000,sydny,25/04/1990\n"
            "b1,9,bob,ng,bob ng,3000,perth,not known\n"
            "b2,9,bob,ng,bob ng,3000,perth,\n"
        ).replace(",", delimiter)
    )
    contacts = _converted_people(people, tmp_path / "o")
    assert contacts["contact_id"].tolist() == ["a1", "a2", "b1", "b2"]
    assert contacts["first_name"].tolist() == ["ann", "anne", "bob", "bob"]
    assert contacts["last_name"].tolist() == ["lee", "lee", "ng", "ng"]
    assert contacts["postcode"].tolist() == ["2000", "2000", "3000", "3000"]
    assert contacts["city"].tolist() == ["sydney", "sydny", "perth", "perth"]
    # 25/04 says the file is day first, so 03/04 is the 3rd of April; an unreadable date
    # is left empty and the contact kept.
    assert contacts["date_of_birth"].tolist() == ["1990-04-03", "1990-04-25", "", ""]
    truth = pd.read_parquet(tmp_path / "o" / "truth" / "contacts.parquet")
    assert truth["person_id"].tolist() == [7, 7, 9, 9]


def test_labelled_people_with_a_full_name_only_and_named_columns_convert(tmp_path):
    people = tmp_path / "crm.csv"
    people.write_text(
        "uid,label,name,res_city_desc,dob\n1,p1,Smith, John,leeds,1980-01-02\n".replace(
            "Smith, John", '"Smith, John"'
        )
        + "2,p1,John Smith,leeds,1980-01-02\n"
        "3,p2,Prince,york,19790305\n"
    )
    contacts = _converted_people(
        people, tmp_path / "o", "--column", "unique_id=uid", "-c", "cluster=label",
        "-c", "city=res_city_desc",
    )  # fmt: skip
    assert contacts["first_name"].tolist() == ["John", "John", ""]
    assert contacts["last_name"].tolist() == ["Smith", "Smith", "Prince"]
    assert contacts["city"].tolist() == ["leeds", "leeds", "york"]
    # Most dates are ISO: the one in another layout is not guessed at.
    assert contacts["date_of_birth"].tolist() == ["1980-01-02", "1980-01-02", ""]
    truth = pd.read_parquet(tmp_path / "o" / "truth" / "contacts.parquet")
    assert truth["person_id"].tolist() == [0, 0, 1]
    for args, message in (
        (["-c", "town=res_city_desc"], "town is not one of unique_id, cluster"),
        (["-c", "city=nowhere"], "the file has no column 'nowhere'"),
        (["-c", "city"], "expected FIELD=HEADER"),
    ):
        refused = CliRunner().invoke(
            app,
            ["convert", "people", str(people), "--out", str(tmp_path / "x"),
             "-c", "unique_id=uid", "-c", "cluster=label", *args],
        )  # fmt: skip
        assert refused.exit_code == 2 and message in refused.output, refused.output
    assert not (tmp_path / "x").exists()


def _converted_people(people: Path, out: Path, *options: str) -> pd.DataFrame:
    """`segmint convert people` run as a user runs it; the contacts it wrote, as text."""
    result = CliRunner().invoke(
        app, ["convert", "people", str(people), "--out", str(out), *options]
    )
    assert result.exit_code == 0, result.output
    return pd.read_csv(out / "crm_contacts.csv", dtype=str, keep_default_na=False)
