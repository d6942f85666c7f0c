"""Measure identity resolution against the generator's truth: pairwise precision and recall.

Every source record the warehouse placed with a customer is labelled with its true person
(contacts, orders and tickets from ``truth/``; device records from ``truth/devices``, except
devices that several people share, whose true person is ambiguous). Two records form a
predicted pair when they share a customer_id and a true pair when they share a person.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from segmint import tables


@dataclass(frozen=True)
class IdentityScores:
    records: int
    customers: int
    persons: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    over_merged_customers: int  # customers holding records of more than one person
    under_merged_persons: int  # persons whose records are spread over several customers
    unplaced_records: int  # labelled records without a customer (anonymous-only)

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


_LABELLED = """
with placed as (
    select record_id, source_table, source_record_id, customer_id
    from {relation}
),
truth_contacts as (
    select source_system || ':' || contact_id as source_record_id, person_id
    from read_parquet('{truth}/contacts.parquet')
),
truth_devices as (
    select anonymous_id as source_record_id, min(person_id) as person_id
    from read_parquet('{truth}/devices.parquet')
    group by 1 having count(distinct person_id) = 1
),
labelled as (
    select p.*, t.person_id from placed p
    join truth_contacts t on p.source_table = 'crm_contacts'
        and p.source_record_id = t.source_record_id
    union all
    select p.*, t.person_id from placed p
    join read_parquet('{truth}/orders.parquet') t on p.source_table = 'orders'
        and p.source_record_id = t.order_id
    union all
    select p.*, t.person_id from placed p
    join read_parquet('{truth}/tickets.parquet') t on p.source_table = 'support_tickets'
        and p.source_record_id = t.ticket_id
    union all
    select p.*, t.person_id from placed p
    join truth_devices t on p.source_table = 'web_events'
        and p.source_record_id = t.source_record_id
)
"""


# What each measure reads from the warehouse: relation -> the columns it needs.
_IDENTITIES = {"marts.dim_customer_identities":
               "record_id, source_table, source_record_id, customer_id"}  # fmt: skip
_BLOCKING = {
    "intermediate.int_identity__records": "record_id, source_table, source_record_id",
    "intermediate.int_identity__pair_comparisons": "record_id_l, record_id_r",
}
_THRESHOLD = {"intermediate.int_identity__match_threshold": "*"}
_CLUSTERS = {"ml.customer_clusters": "customer_id, segment_name"}


@contextlib.contextmanager
def reading(target, relations: dict[str, str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection in which ``relations`` (name -> columns) can be read, next to the
    truth files, which are local.

    ``target`` is a DuckDB file (a path or segmint.warehouse.DuckDBWarehouse), opened
    read-only; or a segmint.snowflake.SnowflakeWarehouse, whose relations are copied (the
    columns needed only) into an in-memory DuckDB: the evaluation reads the warehouse and
    writes nothing to it. A relation the warehouse lacks is left out, so the query naming it
    fails as on DuckDB.
    """
    if getattr(target, "kind", "duckdb") != "snowflake":
        con = duckdb.connect(str(getattr(target, "path", target)), read_only=True)
        try:
            yield con
        finally:
            con.close()
        return
    con = duckdb.connect()
    try:
        with target.connect(read_only=True, step="evaluate") as sf:
            for relation, columns in relations.items():
                schema, table = relation.split(".")
                if not tables.exists(sf, schema, table):
                    continue
                frame = sf.execute(f"select {columns} from {relation}").df()
                con.execute(f"create schema if not exists {schema}")
                con.register("_evaluated", frame)
                con.execute(f"create table {relation} as select * from _evaluated")
                con.unregister("_evaluated")
        yield con
    finally:
        con.close()


def score_labelled(con: duckdb.DuckDBPyConnection, labelled_sql: str) -> IdentityScores:
    """Scores of a query yielding (customer_id, person_id) per record."""
    sql = f"""
        with labelled as ({labelled_sql}),
        placed as (select * from labelled where customer_id is not null),
        by_customer as (select customer_id, count(*) as n, count(distinct person_id) as persons
                        from placed group by 1),
        by_person as (select person_id, count(*) as n, count(distinct customer_id) as customers
                      from placed group by 1),
        by_both as (select count(*) as n from placed group by customer_id, person_id)
        select
            (select count(*) from placed),
            (select count(*) from by_customer),
            (select count(*) from by_person),
            (select coalesce(sum(n * (n - 1) / 2), 0) from by_person),
            (select coalesce(sum(n * (n - 1) / 2), 0) from by_customer),
            (select coalesce(sum(n * (n - 1) / 2), 0) from by_both),
            (select count(*) from by_customer where persons > 1),
            (select count(*) from by_person where customers > 1),
            (select count(*) from labelled where customer_id is null)
    """
    row = con.execute(sql).fetchall()[0]
    return IdentityScores(*(int(v) for v in row))


def evaluate_identity(target, truth_dir: Path) -> IdentityScores:
    """Scores of the warehouse's dim_customer_identities against a generator truth folder
    (``target``: a DuckDB file or a warehouse object, see :func:`reading`)."""
    truth_dir = Path(truth_dir)
    if not (truth_dir / "contacts.parquet").exists():
        raise FileNotFoundError(f"{truth_dir} holds no generator truth (contacts.parquet)")
    with reading(target, _IDENTITIES) as con:
        relation = (
            "(select distinct record_id, source_table, source_record_id, customer_id "
            "from marts.dim_customer_identities)"
        )
        labelled = _LABELLED.format(relation=relation, truth=truth_dir)
        return score_labelled(con, labelled + " select customer_id, person_id from labelled")


def blocking_recall(target, truth: Path) -> tuple[int, int, int]:
    """Candidate generation against truth: (true pairs of contact records, those among the
    candidate pairs of int_identity__pair_comparisons, candidate pairs)."""
    with reading(target, _BLOCKING) as con:
        return con.execute(f"""
            with t as (
                select r.record_id, t.person_id from intermediate.int_identity__records r
                join read_parquet('{truth}') t on r.source_table = 'crm_contacts'
                    and r.source_record_id = t.source_system || ':' || t.contact_id),
            true_pairs as (select a.record_id as l, b.record_id as r from t a join t b
                on a.person_id = b.person_id and a.record_id < b.record_id),
            candidates as (select record_id_l as l, record_id_r as r
                from intermediate.int_identity__pair_comparisons)
            select (select count(*) from true_pairs),
                   (select count(*) from true_pairs join candidates using (l, r)),
                   (select count(*) from candidates)
        """).fetchall()[0]


def match_threshold(target) -> dict | None:
    """The match threshold the last build used (int_identity__match_threshold), or None."""
    with reading(target, _THRESHOLD) as con:
        cursor = con.execute("select * from intermediate.int_identity__match_threshold")
        row = cursor.fetchone()
        return dict(zip([d[0] for d in cursor.description], row, strict=True)) if row else None


# A labelled person file's columns: each field the converter fills, by the header names
# person files commonly use (splink's fake_1000 and historical_50k, FEBRL-style and voter-roll
# exports), the first found winning. Headers match case-insensitively, with spaces and
# hyphens read as underscores; --column TARGET=HEADER names any other header.
_PEOPLE_COLUMNS = {
    "unique_id": ("unique_id", "id", "record_id", "rec_id"),
    "cluster": ("cluster", "person_id", "true_id", "entity_id", "match_id"),
    "email": ("email", "email_address"),
    "first_name": ("first_name", "given_name", "forename", "firstname", "fname"),
    "last_name": ("surname", "last_name", "family_name", "lastname", "lname"),
    "full_name": ("full_name", "name"),
    "street": ("street", "address", "street_address", "address_1", "address_line_1"),
    "city": ("city", "town", "suburb", "locality", "birth_place"),
    "postcode": ("postcode", "postcode_fake", "zip", "zip_code", "zipcode", "postal_code"),
    "phone": ("phone", "phone_number", "telephone", "mobile"),
    "date_of_birth": ("dob", "date_of_birth", "birth_date", "birthdate"),
}
# The contract columns filled from them (full_name only fills first and last name).
_CONTACT_FIELDS = tuple(
    f for f in _PEOPLE_COLUMNS if f not in ("unique_id", "cluster", "full_name")
)
# Birth date layouts, tried on the whole column: the one that reads the most values wins, so
# 03/04/1990 is read as the file's other dates are (day first only when nothing tells).
_DATE_LAYOUTS = (
    "%Y-%m-%d", "%Y%m%d", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y", "%d-%m-%Y",
    "%Y-%m-%d %H:%M:%S",
)  # fmt: skip


def _header_key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _people_columns(csv_path: Path, header, overrides: dict[str, str]) -> dict[str, str | None]:
    """Each field of _PEOPLE_COLUMNS -> the file's header that fills it (None: none does)."""
    from segmint.datasets import DatasetError

    by_key = {}
    for name in header:
        by_key.setdefault(_header_key(name), name)
    found = {
        field: next((by_key[n] for n in names if n in by_key), None)
        for field, names in _PEOPLE_COLUMNS.items()
    }
    for field, name in overrides.items():
        if field not in _PEOPLE_COLUMNS:
            raise DatasetError(
                f"{csv_path}: --column {field}={name}: {field} is not one of "
                f"{', '.join(_PEOPLE_COLUMNS)}"
            )
        if name not in header and _header_key(name) not in by_key:
            raise DatasetError(
                f"{csv_path}: --column {field}={name}: the file has no column {name!r} "
                f"(the header names {', '.join(header)})"
            )
        found[field] = name if name in header else by_key[_header_key(name)]
    return found


def _split_full_names(names):
    """First and last name from a full name: "Smith, John" or "John Smith" (the first and
    the last word; a single word is a last name)."""
    import pandas as pd

    text = names.fillna("").str.strip()
    comma = text.str.contains(",", regex=False)
    before, _, after = text.str.partition(",").T.values
    words = text.str.split()
    first = words.str[0].where(words.str.len() > 1, "")
    last = words.str[-1].fillna("")
    first = pd.Series(after, index=text.index).str.strip().where(comma, first)
    last = pd.Series(before, index=text.index).str.strip().where(comma, last)
    return first.fillna(""), last.fillna("")


def iso_birth_dates(values):
    """Birth dates as YYYY-MM-DD, read in the layout (_DATE_LAYOUTS) that reads most of the
    column; a value it cannot read is left empty, as FEBRL's invalid dates are (a contact
    with an unreadable birth date is still a contact)."""
    import pandas as pd

    text = values.fillna("").str.strip()
    given = text[text != ""]
    if given.empty:
        return text
    best = max(
        _DATE_LAYOUTS,
        key=lambda layout: pd.to_datetime(given, format=layout, errors="coerce").notna().sum(),
    )
    parsed = pd.to_datetime(text.where(text != ""), format=best, errors="coerce")
    return parsed.dt.strftime("%Y-%m-%d").fillna("")


def _person_ids(cluster):
    """The true person as a number: the label itself when every label is one (fake_1000),
    else the labels numbered in order of appearance (historical_50k: Wikidata ids)."""
    import pandas as pd

    if cluster.str.fullmatch(r"\d+").all():
        return cluster.astype(int)
    return pd.Series(pd.factorize(cluster)[0], index=cluster.index)


def landing_from_labelled_people(
    csv_path: Path, out_dir: Path, columns: dict[str, str] | None = None
) -> int:
    """Map a labelled person file onto the crm_contacts contract.

    A record id and the true person (``cluster``: a number or any label) are required; each
    contract column is filled from the first of its names in _PEOPLE_COLUMNS the file has
    (``columns`` maps a field to another header), and left empty otherwise (a file with no
    email has none). A full name fills first and last name when the file has neither. Birth
    dates are written as YYYY-MM-DD from the layout most of them are in. Every record becomes
    one contact of a source system named after the file, and the cluster becomes the truth.
    Returns the number of records written. Raises segmint.datasets.DatasetError naming the
    file and what is missing.
    """
    import pandas as pd

    from segmint.datasets import DatasetError
    from segmint.load import csv_dialect

    delimiter, _ = csv_dialect(Path(csv_path))
    people = pd.read_csv(csv_path, sep=delimiter, dtype=str, keep_default_na=False)
    found = _people_columns(csv_path, list(people.columns), columns or {})
    missing = [f for f in ("unique_id", "cluster") if not found[f]]
    named = found["first_name"] or found["last_name"] or found["full_name"]
    if missing or not named:
        raise DatasetError(
            f"{csv_path}: a labelled person file needs unique_id, cluster and a name column; "
            f"missing {', '.join(missing) or 'first_name and surname'} (the header names "
            f"{', '.join(people.columns)}; --column FIELD=HEADER names others)"
        )
    fields = {f: people[found[f]] if found[f] else "" for f in _CONTACT_FIELDS}
    if not (found["first_name"] or found["last_name"]):
        fields["first_name"], fields["last_name"] = _split_full_names(people[found["full_name"]])
    if found["date_of_birth"]:
        fields["date_of_birth"] = iso_birth_dates(people[found["date_of_birth"]])
    system = Path(csv_path).stem.replace("_", "").lower()
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    contacts = pd.DataFrame(
        {
            "contact_id": people[found["unique_id"]],
            "source_system": system,
            **fields,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }
    )
    contacts.to_csv(out_dir / "crm_contacts.csv", index=False)
    truth = pd.DataFrame(
        {
            "source_system": system,
            "contact_id": people[found["unique_id"]],
            "person_id": _person_ids(people[found["cluster"]]),
        }
    )
    truth.to_parquet(out_dir / "truth" / "contacts.parquet")
    empty = {"order_id": [], "ticket_id": [], "anonymous_id": []}
    for name, key in (
        ("orders", "order_id"),
        ("tickets", "ticket_id"),
        ("devices", "anonymous_id"),
    ):
        pd.DataFrame({key: pd.Series(empty[key], dtype=str),
                      "person_id": pd.Series([], dtype=int)}).to_parquet(
            out_dir / "truth" / f"{name}.parquet"
        )  # fmt: skip
    return len(contacts)


def customer_archetypes(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> pd.DataFrame:
    """Each customer's true archetype: that of the person most of its records belong to."""
    truth_dir = Path(truth_dir)
    if not (truth_dir / "persons.parquet").exists():
        raise FileNotFoundError(f"{truth_dir} holds no generator truth (persons.parquet)")
    relation = (
        "(select distinct record_id, source_table, source_record_id, customer_id "
        "from marts.dim_customer_identities)"
    )
    sql = (
        _LABELLED.format(relation=relation, truth=truth_dir)
        + f"""
        , per_person as (
            select customer_id, person_id, count(*) as records from labelled
            where customer_id is not null group by 1, 2
        ),
        majority as (
            select customer_id, arg_max(person_id, records) as person_id
            from per_person group by 1
        )
        select majority.customer_id, persons.archetype
        from majority
        join read_parquet('{truth_dir}/persons.parquet') as persons using (person_id)
    """
    )
    return con.execute(sql).df()


@dataclass
class SegmentScores:
    customers: int
    segments: int
    archetypes: int
    adjusted_rand_index: float
    crosstab: pd.DataFrame


def evaluate_segments(target, truth_dir: Path) -> SegmentScores:
    """Adjusted Rand index of ml.customer_clusters against the generator's archetypes."""
    from sklearn.metrics import adjusted_rand_score

    with reading(target, {**_IDENTITIES, **_CLUSTERS}) as con:
        truth = customer_archetypes(con, truth_dir)
        clusters = con.execute("select customer_id, segment_name from ml.customer_clusters").df()
    joined = clusters.merge(truth, on="customer_id")
    return SegmentScores(
        customers=len(joined),
        segments=joined["segment_name"].nunique(),
        archetypes=joined["archetype"].nunique(),
        adjusted_rand_index=float(adjusted_rand_score(joined["archetype"], joined["segment_name"])),
        crosstab=pd.crosstab(joined["segment_name"], joined["archetype"]),
    )
