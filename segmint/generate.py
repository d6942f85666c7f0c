"""Deterministic sample-data generator: ``segmint generate --customers N --seed S --out DIR``.

It simulates people of a handful of behavioral archetypes, each seen by several systems the
way real customer data looks: CRM copies with typos and format variants, shop accounts,
several devices with anonymous browsing that a later login links, funnels that stop at
the cart, seasonal traffic, cancellations and refunds, tickets of either tone, consent
grants and revocations, erasure requests, and identifiers that must not merge people (a
shared family device, shared ``info@`` mailboxes, placeholder phones).

Next to one file per raw table it writes ``truth/``: the real person behind every contact
record, shop account, device, order and ticket, and each person's archetype, so identity
resolution and clustering can be measured. With ``messiness > 0`` a share of rows is broken
in table-specific ways and ``truth/bad_rows`` lists them (table, row number, kind).

Work is vectorised and done in chunks of persons: memory stays flat with the scale, and the
output for a seed does not depend on the machine.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from faker.providers.address.en_US import Provider as _Address
from faker.providers.person.en_US import Provider as _Person

from segmint.contracts import TABLES, contracts
from segmint.reference import consent_purposes

CHUNK_PERSONS = 20_000
FORMATS = ("parquet", "csv", "jsonl")

# The planted churn mechanism (_Chunk._complaints): share of customers who complain, and
# share of those who leave within three weeks of it.
COMPLAINT_RATE = 0.12
COMPLAINT_CHURN = 0.7
ARCHETYPES = ("loyal_high_spender", "deal_seeker", "window_shopper", "new_customer", "lapsing")
ARCHETYPE_SHARE = np.array([0.15, 0.20, 0.25, 0.15, 0.25])
# Sessions per active year, chance of a shop account, price multiplier, discount chance.
SESSIONS_PER_YEAR = np.array([6.0, 5.0, 6.0, 18.0, 5.0])
HAS_ACCOUNT = np.array([0.95, 0.85, 0.5, 0.8, 0.8])
PRICE_FACTOR = np.array([1.8, 0.8, 1.0, 1.0, 1.0])
DISCOUNT_CHANCE = np.array([0.10, 0.85, 0.20, 0.30, 0.15])
EXTRA_LINES = np.array([1.4, 0.5, 0.4, 0.6, 0.5])
# Funnel depth per session: bounce, browse, product, cart, checkout, purchase.
FUNNEL = np.array(
    [
        [0.12, 0.13, 0.25, 0.10, 0.05, 0.35],
        [0.15, 0.15, 0.25, 0.12, 0.08, 0.25],
        [0.25, 0.20, 0.35, 0.14, 0.05, 0.01],
        [0.18, 0.15, 0.25, 0.10, 0.05, 0.27],
        [0.30, 0.20, 0.25, 0.10, 0.05, 0.10],
    ]
)

COUNTRIES = np.array(["US", "GB", "DE", "FR", "CA"])
COUNTRY_SHARE = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
COUNTRY_VARIANTS = {
    "US": ["US", "USA", "United States", "us"],
    "GB": ["GB", "GBR", "United Kingdom", "gb"],
    "DE": ["DE", "DEU", "Germany", "de"],
    "FR": ["FR", "FRA", "France", "fr"],
    "CA": ["CA", "CAN", "Canada", "ca"],
}
CURRENCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "CA": "CAD"}
CITIES = {
    "US": ["New York", "Chicago", "Austin", "Seattle", "Denver", "Boston"],
    "GB": ["London", "Manchester", "Leeds", "Bristol"],
    "DE": ["Berlin", "Hamburg", "Munich", "Cologne"],
    "FR": ["Paris", "Lyon", "Marseille", "Lille"],
    "CA": ["Toronto", "Vancouver", "Montreal"],
}
NICKNAMES = {
    "William": "Bill",
    "Robert": "Bob",
    "Richard": "Rick",
    "James": "Jim",
    "Michael": "Mike",
    "Thomas": "Tom",
    "Christopher": "Chris",
    "Daniel": "Dan",
    "Matthew": "Matt",
    "Anthony": "Tony",
    "Joseph": "Joe",
    "Jennifer": "Jen",
    "Elizabeth": "Liz",
    "Katherine": "Kate",
    "Margaret": "Maggie",
    "Patricia": "Pat",
    "Susan": "Sue",
    "Jessica": "Jess",
    "Rebecca": "Becky",
    "Samantha": "Sam",
    "Alexander": "Alex",
    "Benjamin": "Ben",
    "Nicholas": "Nick",
    "Jonathan": "Jon",
    "Kimberly": "Kim",
    "Deborah": "Deb",
    "Timothy": "Tim",
    "Andrew": "Andy",
    "Steven": "Steve",
    "Edward": "Ed",
}
FIRST_NAMES = np.array(sorted(set(_Person.first_names_male) | set(_Person.first_names_female)))
LAST_NAMES = np.array(sorted(_Person.last_names))
STREET_NAMES = LAST_NAMES[:300]
STREET_SUFFIXES = np.array(["Street", "Avenue", "Road", "Lane", "Drive"])
STREET_ABBREV = {"Street": "St", "Avenue": "Ave", "Road": "Rd", "Lane": "Ln", "Drive": "Dr"}
EMAIL_DOMAINS = np.array(["example.com", "example.net", "example.org", "mail.example"])
COMPANIES = np.array([f"{w.lower()}-co" for w in _Address.street_suffixes[:40]])

CATEGORIES = np.array(
    ["electronics", "fashion", "home", "beauty", "sports", "books", "toys", "grocery"]
)
CATEGORY_PRICE = np.array([180.0, 45.0, 60.0, 25.0, 55.0, 15.0, 30.0, 8.0])
PRODUCTS_PER_CATEGORY = 50
UTM = np.array(
    [
        ["google", "cpc"],
        ["newsletter", "email"],
        ["facebook", "social"],
        ["instagram", "social"],
        ["affiliate_net", "affiliate"],
        ["bing", "cpc"],
    ]
)
CAMPAIGNS = np.array(["spring_sale", "summer_sale", "back_to_school", "black_friday", "holiday"])
REFERRERS = np.array(
    ["", "https://www.google.example/", "https://news.example/", "https://social.example/"]
)
DEVICE_TYPES = np.array(["desktop", "mobile", "tablet"])
DEVICE_OS = {
    "desktop": ["Windows", "macOS", "Linux"],
    "mobile": ["iOS", "Android"],
    "tablet": ["iPadOS", "Android"],
}
TICKET_TEXT = {
    "negative": [
        (
            "Order arrived damaged",
            "My order arrived broken and nobody answers. Very disappointed, "
            "this is terrible service and I want a refund.",
        ),
        (
            "Still waiting for refund",
            "It has been three weeks and I still have not received my "
            "refund. This is frustrating and unacceptable.",
        ),
        ("Wrong item", "I received the wrong item again. Awful experience, I am angry."),
    ],
    "neutral": [
        ("Question about sizes", "Could you tell me whether the medium size runs small?"),
        ("Change delivery address", "Please update the delivery address for my last order."),
        ("Invoice request", "Can I get an invoice for my recent purchase?"),
    ],
    "positive": [
        (
            "Thank you",
            "Great service, the package came early and everything is perfect. "
            "Thanks a lot, I love it!",
        ),
        ("Happy with my purchase", "Wonderful quality, excellent support. I am very happy."),
    ],
}
CONSENT_PURPOSES = consent_purposes()  # seeds/consent_purposes.csv
CONSENT_GRANT = np.array([0.7, 0.3, 0.6, 0.8])
PLACEHOLDER_PHONES = np.array(["0000000000", "1234567890", "+1 555 555 5555"])

HORIZON_DAYS = 730
DEFAULT_REFERENCE_DATE = date(2026, 10, 31)


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int
    seed: int = 42
    out: Path = Path("data/landing")
    messiness: float = 0.0
    file_format: str = "parquet"
    reference_date: date = DEFAULT_REFERENCE_DATE
    chunk_persons: int = CHUNK_PERSONS

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError("customers must be at least 1")
        if not 0.0 <= self.messiness <= 0.5:
            raise ValueError("messiness must be between 0 and 0.5")
        if self.file_format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")


@dataclass
class GenerateResult:
    out: Path
    rows: dict[str, int] = field(default_factory=dict)
    bad_rows: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# Small vectorised helpers


def _mix(x: np.ndarray, salt: int) -> np.ndarray:
    """A bijective 40-bit scramble of integer ids: opaque, unique and stable."""
    x = (x.astype(np.uint64) + np.uint64(salt)) & np.uint64((1 << 40) - 1)
    x = (x * np.uint64(0x9E3779B97)) & np.uint64((1 << 40) - 1)
    x ^= x >> np.uint64(17)
    return (x * np.uint64(0xBF58476D1)) & np.uint64((1 << 40) - 1)


def _hex_ids(prefix: str, x: np.ndarray, salt: int) -> np.ndarray:
    return np.array([f"{prefix}{v:010x}" for v in _mix(x, salt).tolist()], dtype=object)


def _pick(rng: np.random.Generator, values: np.ndarray, n: int, p=None) -> np.ndarray:
    return values[rng.choice(len(values), size=n, p=p)]


def _typo(rng: np.random.Generator, names: np.ndarray, rate: float) -> np.ndarray:
    """Swap two adjacent letters or drop one, in a share of the names."""
    out = names.copy()
    for i in np.flatnonzero(rng.random(len(names)) < rate):
        s = out[i]
        if not isinstance(s, str) or len(s) < 4:
            continue
        j = int(rng.integers(1, len(s) - 1))
        out[i] = s[:j] + s[j + 1] + s[j] + s[j + 2 :] if rng.random() < 0.5 else s[:j] + s[j + 1 :]
    return out


def _email_variant(rng: np.random.Generator, emails: np.ndarray) -> np.ndarray:
    """Case and white-space variants of the same address (same mailbox after normalizing)."""
    out = emails.copy()
    r = rng.random(len(emails))
    for i in np.flatnonzero(r < 0.25):
        e = out[i]
        if not isinstance(e, str):
            continue
        if r[i] < 0.10:
            out[i] = e.upper()
        elif r[i] < 0.18:
            out[i] = e[0].upper() + e[1:]
        else:
            out[i] = f"  {e} "
    return out


def _phone_formats(rng: np.random.Generator, country: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """A unique phone number per person, written in one of several national notations."""
    sub = pid % 10_000_000
    style = rng.integers(0, 4, len(pid))
    out = np.empty(len(pid), dtype=object)
    for i, (c, s, st) in enumerate(
        zip(country.tolist(), sub.tolist(), style.tolist(), strict=True)
    ):
        a, b = f"{s:07d}"[:3], f"{s:07d}"[3:]
        if c in ("US", "CA"):
            area = "212" if c == "US" else "416"
            out[i] = [
                f"+1 {area} {a} {b}",
                f"({area}) {a}-{b}",
                f"{area}.{a}.{b}",
                f"+1{area}{a}{b}",
            ][st]
        else:
            cc, trunk = {"GB": ("44", "20"), "DE": ("49", "30"), "FR": ("33", "1")}[c]
            num = f"{s:08d}"
            out[i] = [
                f"+{cc} {trunk} {num[:4]} {num[4:]}",
                f"0{trunk} {num[:4]} {num[4:]}",
                f"00{cc} {trunk}{num}",
                f"+{cc}{trunk}{num}",
            ][st]
    return out


def _iso(ts: np.ndarray) -> pa.Array:
    """Timestamps (numpy datetime64[s], UTC) as ISO 8601 text with a Z."""
    arr = pa.array(ts.astype("datetime64[s]"), pa.timestamp("s"))
    return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------
# Output


class _Writers:
    """One output file per raw table (plus truth tables), appended chunk by chunk."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self._open: dict[str, object] = {}
        self.rows: dict[str, int] = dict.fromkeys(TABLES, 0)
        self.bad: list[dict] = []
        self._schemas = {t: self._schema(t) for t in TABLES}

    def _schema(self, table: str) -> pa.Schema:
        fields = []
        for col in contracts()[table].columns:
            kind = pa.string()
            if self.cfg.messiness == 0 and self.cfg.file_format != "csv":
                kind = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64()}[
                    col.json_type
                ]
            fields.append(pa.field(col.name, kind))
        return pa.schema(fields)

    def write(self, table: str, frame: pd.DataFrame, breakers: list[Callable] | None) -> None:
        frame = frame[[c.name for c in contracts()[table].columns]]
        if self.cfg.messiness > 0 or self.cfg.file_format == "csv":
            frame = _as_text(frame)
        if self.cfg.messiness > 0 and breakers:
            frame = self._break(table, frame, breakers)
        arrow = pa.Table.from_pandas(frame, schema=self._schemas[table], preserve_index=False)
        self._append(table, arrow, self.out / f"{table}.{self.cfg.file_format}")
        self.rows[table] += len(frame)

    def _break(self, table: str, frame: pd.DataFrame, breakers: list[Callable]) -> pd.DataFrame:
        rng = np.random.default_rng([self.cfg.seed, 7, TABLES.index(table), self.rows[table]])
        frame = frame.copy()
        for i in np.flatnonzero(rng.random(len(frame)) < self.cfg.messiness):
            brk = breakers[int(rng.integers(len(breakers)))]
            kind = brk(frame, i)
            self.bad.append({"table": table, "row_number": self.rows[table] + i + 1, "kind": kind})
        return frame

    def truth(self, name: str, frame: pd.DataFrame) -> None:
        arrow = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
        self._append(f"truth/{name}", arrow, self.out / "truth" / f"{name}.parquet")

    def _append(self, key: str, arrow: pa.Table, path: Path) -> None:
        writer = self._open.get(key)
        if writer is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".parquet":
                writer = pq.ParquetWriter(path, arrow.schema, compression="zstd")
            elif path.suffix == ".csv":
                writer = pa_csv.CSVWriter(path, arrow.schema)
            else:
                writer = path.open("w", encoding="utf-8")
            self._open[key] = writer
        if isinstance(writer, pq.ParquetWriter | pa_csv.CSVWriter):
            writer.write_table(arrow)
        else:
            for rec in arrow.to_pylist():
                writer.write(json.dumps(rec) + "\n")

    def close(self) -> None:
        for writer in self._open.values():
            writer.close()
        self.truth("bad_rows", pd.DataFrame(self.bad, columns=["table", "row_number", "kind"]))
        self._open["truth/bad_rows"].close()


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as text (None for missing), the way a CSV export or a messy feed has it."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object:
            out[name] = col.to_numpy(dtype=object)
        else:
            out[name] = np.where(col.notna().to_numpy(), col.astype(str).to_numpy(), None)
    return pd.DataFrame(out, index=frame.index)


# ---------------------------------------------------------------------------------------
# Bad-row makers for --messiness: each breaks one row in place and names what it did.


def _set(col: str, value: object, kind: str) -> Callable:
    def brk(frame: pd.DataFrame, i: int) -> str:
        frame.iat[i, frame.columns.get_loc(col)] = value
        return kind

    return brk


BREAKERS: dict[str, list[Callable]] = {
    "crm_contacts": [
        _set("contact_id", None, "missing_contact_id"),
        _set("updated_at", "31/02/2026 25:61", "bad_timestamp"),
        _set("date_of_birth", "1985-13-45", "bad_date"),
        _set("email", "jane.doe#example.com", "bad_email"),
    ],
    "web_events": [
        _set("event_id", None, "missing_event_id"),
        _set("occurred_at", "yesterday", "bad_timestamp"),
        _set("properties", "{order_id: 1", "bad_json"),
        _set("scroll_depth_pct", "140", "out_of_range"),
        _set("price", "-3.5", "negative_price"),
    ],
    "orders": [
        _set("total_amount", "-12.5", "negative_amount"),
        _set("status", "lost", "unknown_status"),
        _set("total_amount", "12,50", "bad_number"),
        _set("ordered_at", None, "missing_timestamp"),
        _set("currency", "US Dollar", "bad_currency"),
    ],
    "order_items": [
        _set("quantity", "two", "bad_integer"),
        _set("quantity", "0", "zero_quantity"),
        _set("unit_price", "-1", "negative_price"),
        _set("line_number", "1.5", "fractional_integer"),
    ],
    "support_tickets": [
        _set("satisfaction_score", "9", "out_of_range"),
        _set("created_at", "soon", "bad_timestamp"),
        _set("ticket_id", "", "missing_ticket_id"),
    ],
    "consent_events": [
        _set("purpose", "newsletter", "unknown_purpose"),
        _set("status", "maybe", "unknown_status"),
        _set("email", None, "missing_email"),
    ],
    "erasure_requests": [
        _set("email", "not-an-email", "bad_email"),
        _set("requested_at", "2026-99-01", "bad_timestamp"),
    ],
}


# ---------------------------------------------------------------------------------------
# The simulation, one chunk of persons at a time


def _day_cdf(ref: date) -> tuple[np.ndarray, np.ndarray]:
    """Daily traffic weights over the horizon: weekends and the holiday season are busier."""
    days = np.array([ref - timedelta(days=HORIZON_DAYS - 1 - i) for i in range(HORIZON_DAYS)])
    weight = np.ones(HORIZON_DAYS)
    for i, d in enumerate(days):
        if d.weekday() >= 5:
            weight[i] *= 1.25
        if (d.month == 11 and d.day >= 15) or (d.month == 12 and d.day <= 24):
            weight[i] *= 1.8
        if d.month in (6, 7):
            weight[i] *= 1.15
    cdf = np.cumsum(weight) / weight.sum()
    return np.concatenate([[0.0], cdf]), days


class _Chunk:
    def __init__(self, cfg: GeneratorConfig, start: int, stop: int, cdf: np.ndarray) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng([cfg.seed, start])
        self.pid = np.arange(start, stop, dtype=np.int64)
        self.n = stop - start
        self.cdf = cdf
        self.t0 = np.datetime64(cfg.reference_date - timedelta(days=HORIZON_DAYS - 1), "s")

    def _days_to_ts(self, day_lo: np.ndarray, day_hi: np.ndarray) -> np.ndarray:
        """Seasonally weighted random instants between two day offsets (inclusive)."""
        lo = self.cdf[np.clip(day_lo, 0, HORIZON_DAYS - 1)]
        hi = self.cdf[np.clip(day_hi, 0, HORIZON_DAYS - 1) + 1]
        u = lo + self.rng.random(len(lo)) * (hi - lo)
        day = np.clip(np.searchsorted(self.cdf, u, side="right") - 1, 0, HORIZON_DAYS - 1)
        secs = (day * 86400 + self.rng.integers(6 * 3600, 86400, len(day))).astype("timedelta64[s]")
        return self.t0 + secs

    # -- persons -------------------------------------------------------------------------
    def persons(self) -> pd.DataFrame:
        rng, n = self.rng, self.n
        arch = rng.choice(len(ARCHETYPES), size=n, p=ARCHETYPE_SHARE)
        country = _pick(rng, COUNTRIES, n, COUNTRY_SHARE)
        first = _pick(rng, FIRST_NAMES, n)
        last = _pick(rng, LAST_NAMES, n)
        local = [
            f"{f.lower()}.{ln.lower()}.{p:x}"
            for f, ln, p in zip(first, last, self.pid, strict=True)
        ]
        domain = _pick(rng, EMAIL_DOMAINS, n)
        start = np.select(
            [arch == 0, arch == 1, arch == 2, arch == 3, arch == 4],
            [
                rng.integers(0, 365, n),
                rng.integers(0, 530, n),
                rng.integers(0, 700, n),
                rng.integers(HORIZON_DAYS - 60, HORIZON_DAYS - 5, n),
                rng.integers(0, 230, n),
            ],
        )
        end = np.where(arch == 4, rng.integers(330, 530, n), HORIZON_DAYS - 1)
        complaint_day, end = self._complaints(arch, start, end)
        dob = np.datetime64("1950-01-01") + rng.integers(0, 55 * 365, n).astype("timedelta64[D]")
        return pd.DataFrame(
            {
                "person_id": self.pid,
                "archetype": np.array(ARCHETYPES)[arch],
                "arch": arch,
                "first_name": first,
                "last_name": last,
                "email": [f"{lo}@{d}" for lo, d in zip(local, domain, strict=True)],
                "work_email": np.where(
                    rng.random(n) < 0.15,
                    [
                        f"{f[0].lower()}{ln.lower()}.{p:x}@work.example"
                        for f, ln, p in zip(first, last, self.pid, strict=True)
                    ],
                    None,
                ),
                "phone": _phone_formats(rng, country, self.pid),
                "has_phone": rng.random(n) < 0.75,
                "country": country,
                "city": [
                    CITIES[c][int(i) % len(CITIES[c])]
                    for c, i in zip(country, rng.integers(0, 100, n), strict=True)
                ],
                "street": [
                    f"{int(a)} {s} {x}"
                    for a, s, x in zip(
                        rng.integers(1, 999, n),
                        _pick(rng, STREET_NAMES, n),
                        _pick(rng, STREET_SUFFIXES, n),
                        strict=True,
                    )
                ],
                "postcode": [f"{int(v):05d}" for v in rng.integers(1000, 99999, n)],
                "date_of_birth": dob.astype(str),
                "start_day": start,
                "end_day": end,
                "complaint_day": complaint_day,
                "has_account": rng.random(n) < HAS_ACCOUNT[arch],
                "account_id": _hex_ids("acc_", self.pid, 11),
                "fav_category": rng.integers(0, len(CATEGORIES), n),
            }
        )

    def _complaints(self, arch: np.ndarray, start: np.ndarray, end: np.ndarray):
        """The planted churn mechanism (what the propensity models must find, issue 20).

        A customer past their first month files a complaint on a random day of their active
        span with chance ``COMPLAINT_RATE`` (new customers do not); ``COMPLAINT_CHURN`` of
        them stop visiting and buying within three weeks of it. The complaint is a negative
        support ticket (``tickets``), something RFM alone cannot see coming. Drawn from a
        stream of its own. Returns the complaint day (-1: none) and the new end days.
        """
        crng = np.random.default_rng([self.cfg.seed, int(self.pid[0]), 20])
        low = np.minimum(start + 30, HORIZON_DAYS - 1)
        day = crng.integers(low, HORIZON_DAYS)
        complains = (arch != 3) & (crng.random(self.n) < COMPLAINT_RATE) & (day <= end)
        leaves = complains & (crng.random(self.n) < COMPLAINT_CHURN)
        after = day + crng.integers(0, 21, self.n)
        return np.where(complains, day, -1), np.where(leaves, np.minimum(end, after), end)

    # -- CRM contacts --------------------------------------------------------------------
    def contacts(self, p: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        rng, n = self.rng, self.n
        in_hub = rng.random(n) < 0.7
        in_sf = rng.random(n) < 0.4
        in_shop = p["has_account"].to_numpy()
        in_hub |= ~(in_sf | in_shop)
        frames = []
        for system, mask, ids in (
            ("hubspot", in_hub, np.array([str(v % 10**10) for v in _mix(self.pid, 23).tolist()])),
            ("salesforce", in_sf, _hex_ids("003", self.pid, 37)),
            ("shop", in_shop, p["account_id"].to_numpy()),
        ):
            q = p[mask].copy()
            q["source_system"] = system
            q["contact_id"] = ids[mask]
            frames.append(q)
        c = pd.concat(frames, ignore_index=True)
        m = len(c)
        r = rng.random((m, 8))
        email = c["email"].to_numpy(dtype=object).copy()
        work = c["work_email"].to_numpy(dtype=object)
        use_work = (c["source_system"].to_numpy() != "shop") & pd.notna(work) & (r[:, 0] < 0.5)
        email[use_work] = work[use_work]
        email[r[:, 1] < 0.04] = None
        # A shared company mailbox on a few B2B records: must never merge these people.
        shared = (c["source_system"].to_numpy() == "salesforce") & (r[:, 2] < 0.01)
        email[shared] = [f"info@{co}.example" for co in _pick(rng, COMPANIES, int(shared.sum()))]
        email = _email_variant(rng, email)
        first = c["first_name"].to_numpy(dtype=object).copy()
        nick = r[:, 3] < 0.12
        first[nick] = [NICKNAMES.get(f, f) for f in first[nick]]
        first = _typo(rng, first, 0.04)
        last = _typo(rng, c["last_name"].to_numpy(dtype=object), 0.04)
        upper = r[:, 4] < 0.05
        last[upper] = [s.upper() for s in last[upper]]
        phone = np.where(c["has_phone"].to_numpy() & (r[:, 5] < 0.8), c["phone"], None)
        placeholder = r[:, 6] < 0.004
        phone[placeholder] = _pick(rng, PLACEHOLDER_PHONES, int(placeholder.sum()))
        street = c["street"].to_numpy(dtype=object).copy()
        abbrev = r[:, 7] < 0.4
        street[abbrev] = [
            " ".join([*s.split()[:-1], STREET_ABBREV[s.split()[-1]]]) for s in street[abbrev]
        ]
        country = np.array(
            [
                COUNTRY_VARIANTS[x][int(i)]
                for x, i in zip(c["country"], rng.integers(0, 4, m), strict=True)
            ],
            dtype=object,
        )
        created = self._days_to_ts(c["start_day"].to_numpy(), c["start_day"].to_numpy() + 30)
        updated = created + rng.integers(0, 200 * 86400, m).astype("timedelta64[s]")
        updated = np.minimum(updated, np.datetime64(self.cfg.reference_date, "s"))
        out = pd.DataFrame(
            {
                "contact_id": c["contact_id"].to_numpy(),
                "source_system": c["source_system"].to_numpy(),
                "email": email,
                "phone": phone,
                "first_name": first,
                "last_name": last,
                "street": np.where(rng.random(m) < 0.7, street, None),
                "city": np.where(rng.random(m) < 0.85, c["city"], None),
                "postcode": np.where(rng.random(m) < 0.7, c["postcode"], None),
                "country": np.where(rng.random(m) < 0.9, country, None),
                "date_of_birth": np.where(rng.random(m) < 0.6, c["date_of_birth"], None),
                "created_at": _iso(created).to_numpy(zero_copy_only=False),
                "updated_at": _iso(updated).to_numpy(zero_copy_only=False),
            }
        )
        # Systems re-send records: an older version of 5% of them arrives too.
        old = out[rng.random(m) < 0.05].copy()
        old["updated_at"] = old["created_at"]
        old["first_name"] = c.loc[old.index, "first_name"].to_numpy()
        truth = pd.DataFrame(
            {
                "source_system": out["source_system"],
                "contact_id": out["contact_id"],
                "person_id": c["person_id"].to_numpy(),
            }
        )
        both = pd.concat([out, old], ignore_index=True)
        return both.sample(frac=1.0, random_state=int(rng.integers(1 << 31))), truth

    # -- devices, sessions, events, orders -----------------------------------------------
    def activity(self, p: pd.DataFrame) -> dict[str, pd.DataFrame]:
        rng, n = self.rng, self.n
        arch = p["arch"].to_numpy()
        n_dev = np.minimum(1 + rng.poisson(0.6, n), 4)
        dev_person = np.repeat(np.arange(n), n_dev)
        dev_global = np.arange(len(dev_person)) + self.pid[0] * 8
        dev_ids = _hex_ids("anon_", dev_global, 51)
        first_dev = np.concatenate([[0], np.cumsum(n_dev)[:-1]])
        # A shared family device: two persons log in on the same tablet.
        family = np.flatnonzero((rng.random(n) < 0.01) & (np.arange(n) % 2 == 0))
        family = family[family + 1 < n]
        dev_ids[first_dev[family + 1]] = dev_ids[first_dev[family]]
        dev_type = _pick(rng, DEVICE_TYPES, len(dev_person), [0.45, 0.45, 0.10])
        dev_type[first_dev[family]] = "tablet"
        dev_type[first_dev[family + 1]] = "tablet"
        dev_os = np.array(
            [
                DEVICE_OS[t][int(i) % len(DEVICE_OS[t])]
                for t, i in zip(dev_type, rng.integers(0, 6, len(dev_type)), strict=True)
            ]
        )
        dev_login_at = rng.integers(0, 4, len(dev_person))  # session index of the first login
        dev_login_at[rng.random(len(dev_person)) < 0.15] = 10_000  # never logs in there

        # Sessions per person from the archetype's rate over its active span.
        span = (p["end_day"] - p["start_day"] + 1).to_numpy()
        n_sess = rng.poisson(SESSIONS_PER_YEAR[arch] * span / 365.0) + 1
        s_person = np.repeat(np.arange(n), n_sess)
        s_dev = first_dev[s_person] + (rng.random(len(s_person)) * n_dev[s_person]).astype(int)
        s_start = self._days_to_ts(
            p["start_day"].to_numpy()[s_person], p["end_day"].to_numpy()[s_person]
        )
        order = np.lexsort((s_start, s_dev))
        s_person, s_dev, s_start = s_person[order], s_dev[order], s_start[order]
        boundary = np.r_[True, s_dev[1:] != s_dev[:-1]]
        group_start = np.maximum.accumulate(np.where(boundary, np.arange(len(s_dev)), 0))
        s_rank = np.arange(len(s_dev)) - group_start
        has_acc = p["has_account"].to_numpy()[s_person]
        logged_before = has_acc & (s_rank > dev_login_at[s_dev])
        login_now = has_acc & (s_rank == dev_login_at[s_dev])
        m = len(s_person)
        depth = (rng.random((m, 1)) > np.cumsum(FUNNEL[arch[s_person]], axis=1)).sum(axis=1)
        campaign = rng.random(m) < np.where(arch[s_person] == 1, 0.6, 0.25)
        utm_i = rng.integers(0, len(UTM), m)
        camp_i = rng.integers(0, len(CAMPAIGNS), m)

        # Event counts per session and type, in funnel order.
        types = np.array(
            [
                "page_view",
                "login",
                "search",
                "product_view",
                "add_to_cart",
                "remove_from_cart",
                "checkout_start",
                "identify",
                "purchase",
            ]
        )
        counts = np.zeros((m, len(types)), dtype=np.int64)
        counts[:, 0] = np.where(depth == 0, 1, 1 + rng.poisson(0.8, m))
        counts[:, 1] = login_now
        counts[:, 2] = (depth >= 1) & (rng.random(m) < 0.3)
        counts[:, 3] = np.where(depth >= 2, 1 + rng.poisson(1.0, m), 0)
        counts[:, 4] = np.where(depth >= 3, 1 + rng.poisson(0.3, m), 0)
        counts[:, 5] = (depth >= 3) & (rng.random(m) < 0.1)
        counts[:, 6] = depth >= 4
        logged_in_checkout = logged_before | login_now
        counts[:, 7] = (depth >= 5) & ~logged_in_checkout
        counts[:, 8] = depth >= 5
        per_sess = counts.sum(axis=1)
        e_sess = np.repeat(np.arange(m), per_sess)
        e_type_i = np.repeat(np.tile(np.arange(len(types)), m), counts.ravel())
        gaps = rng.exponential(45.0, len(e_sess)).astype(np.int64) + 5
        csum = np.cumsum(gaps)
        sess_first = np.concatenate([[0], np.cumsum(per_sess)[:-1]])
        offset = csum - np.repeat(csum[sess_first] - gaps[sess_first], per_sess)
        e_ts = s_start[e_sess] + offset.astype("timedelta64[s]")
        e_person = s_person[e_sess]
        e_dev = s_dev[e_sess]
        known = logged_before[e_sess] | (login_now[e_sess] & (e_type_i >= 1))
        acc = p["account_id"].to_numpy()[e_person]
        fav = p["fav_category"].to_numpy()[e_person]
        e_cat = np.where(
            rng.random(len(e_sess)) < 0.7, fav, rng.integers(0, len(CATEGORIES), len(e_sess))
        )
        e_prod_n = rng.integers(0, PRODUCTS_PER_CATEGORY, len(e_sess))
        is_prod = np.isin(e_type_i, [3, 4, 5])
        price = np.round(
            CATEGORY_PRICE[e_cat]
            * PRICE_FACTOR[arch[e_person]]
            * np.exp(rng.normal(0, 0.3, len(e_sess))),
            2,
        )
        prod_id = np.array([f"p{c:02d}{k:03d}" for c, k in zip(e_cat, e_prod_n, strict=True)])

        # Orders: one per purchasing session, plus store orders.
        purchase_sess = np.flatnonzero(depth >= 5)
        o_person = s_person[purchase_sess]
        k = len(purchase_sess)
        store = self._store_orders(p, arch)
        o_ids = _hex_ids("ord_", self.pid[0] * 64 + np.arange(k + len(store["person"])), 71)
        store["ids"], o_ids = o_ids[k:], o_ids[:k]
        o_ts = s_start[purchase_sess] + (
            offset[sess_first[purchase_sess] + per_sess[purchase_sess] - 1]
        ).astype("timedelta64[s]")
        o_logged = logged_in_checkout[purchase_sess]
        e_props = np.full(len(e_sess), None, dtype=object)
        purchase_events = np.flatnonzero(e_type_i == 8)
        e_props[purchase_events] = [json.dumps({"order_id": o}) for o in o_ids]
        search_events = np.flatnonzero(e_type_i == 2)
        e_props[search_events] = [
            json.dumps({"query": CATEGORIES[c]}) for c in e_cat[search_events]
        ]
        person_email = p["email"].to_numpy(dtype=object)
        e_email = np.full(len(e_sess), None, dtype=object)
        ident = np.flatnonzero(e_type_i == 7)
        e_email[ident] = _email_variant(rng, person_email[e_person[ident]])
        path = np.where(
            is_prod,
            np.char.add("/p/", prod_id.astype(str)),
            np.where(e_type_i == 0, np.char.add("/c/", CATEGORIES[e_cat]), "/account"),
        )
        e_utm = campaign[e_sess]
        events = pd.DataFrame(
            {
                "event_id": _hex_ids("evt_", self.pid[0] * 4096 + np.arange(len(e_sess)), 91),
                "anonymous_id": dev_ids[e_dev],
                "user_id": np.where(known, acc, None),
                "email": e_email,
                "event_type": types[e_type_i],
                "occurred_at": _iso(e_ts).to_numpy(zero_copy_only=False),
                "page_url": np.char.add("https://shop.example", path.astype(str)),
                "referrer": np.where(e_utm, None, _pick(rng, REFERRERS, len(e_sess))),
                "utm_source": np.where(e_utm, UTM[utm_i[e_sess], 0], None),
                "utm_medium": np.where(e_utm, UTM[utm_i[e_sess], 1], None),
                "utm_campaign": np.where(e_utm, CAMPAIGNS[camp_i[e_sess]], None),
                "device_type": dev_type[e_dev],
                "os": dev_os[e_dev],
                "country": p["country"].to_numpy()[e_person],
                "product_id": np.where(is_prod, prod_id, None),
                "category": np.where(is_prod | (e_type_i == 0), CATEGORIES[e_cat], None),
                "price": np.where(is_prod, price, np.nan),
                "scroll_depth_pct": np.where(
                    e_type_i <= 3, np.round(rng.beta(2, 2, len(e_sess)) * 100, 1), np.nan
                ),
                "engaged_seconds": np.where(
                    e_type_i <= 3, np.round(rng.exponential(40.0, len(e_sess)), 1), np.nan
                ),
                "properties": e_props,
            }
        )
        orders, items = self._orders(p, arch, o_person, o_ids, o_ts, o_logged, store)
        devices = pd.DataFrame({"anonymous_id": dev_ids, "person_id": self.pid[dev_person]})
        devices = devices.drop_duplicates()
        return {"web_events": events, "orders": orders, "order_items": items, "devices": devices}

    def _store_orders(self, p: pd.DataFrame, arch: np.ndarray) -> dict[str, np.ndarray]:
        rng, n = self.rng, self.n
        n_store = rng.poisson(np.where(arch == 0, 1.5, 0.2))
        person = np.repeat(np.arange(n), n_store)
        ts = self._days_to_ts(p["start_day"].to_numpy()[person], p["end_day"].to_numpy()[person])
        return {"person": person, "ts": ts}

    def _orders(self, p, arch, o_person, o_ids, o_ts, o_logged, store):
        rng = self.rng
        person = np.concatenate([o_person, store["person"]])
        ids = np.concatenate([o_ids, store["ids"]])
        ts = np.concatenate([o_ts, store["ts"]])
        k, ks = len(o_person), len(store["person"])
        channel = np.concatenate(
            [np.where(rng.random(k) < 0.3, "app", "web"), np.full(ks, "store")]
        )
        has_acc = p["has_account"].to_numpy()[person]
        ref_known = np.concatenate([o_logged, rng.random(ks) < 0.5]) & has_acc
        email_known = ~ref_known | (rng.random(len(person)) < 0.7)
        # Lines: product, quantity and price from the buyer's taste and archetype.
        n_lines = 1 + rng.poisson(EXTRA_LINES[arch[person]])
        l_order = np.repeat(np.arange(len(person)), n_lines)
        l_no = np.arange(len(l_order)) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines) + 1
        fav = p["fav_category"].to_numpy()[person[l_order]]
        cat = np.where(
            rng.random(len(l_order)) < 0.7, fav, rng.integers(0, len(CATEGORIES), len(l_order))
        )
        qty = 1 + rng.poisson(np.where(arch[person[l_order]] == 0, 0.6, 0.2))
        unit = np.round(
            CATEGORY_PRICE[cat]
            * PRICE_FACTOR[arch[person[l_order]]]
            * np.exp(rng.normal(0, 0.3, len(l_order))),
            2,
        )
        gross = np.bincount(l_order, weights=qty * unit, minlength=len(person))
        discounted = rng.random(len(person)) < DISCOUNT_CHANCE[arch[person]]
        discount = np.where(
            discounted, np.round(gross * rng.uniform(0.1, 0.3, len(person)), 2), 0.0
        )
        status = _pick(
            rng, np.array(["completed", "cancelled", "refunded"]), len(person), [0.92, 0.03, 0.05]
        )
        country = p["country"].to_numpy()[person]
        orders = pd.DataFrame(
            {
                "order_id": ids,
                "customer_ref": np.where(ref_known, p["account_id"].to_numpy()[person], None),
                "email": np.where(
                    email_known,
                    _email_variant(rng, p["email"].to_numpy(dtype=object)[person]),
                    None,
                ),
                "ordered_at": _iso(ts).to_numpy(zero_copy_only=False),
                "status": status,
                "currency": [CURRENCY[c] for c in country],
                "total_amount": np.round(gross - discount, 2),
                "discount_amount": np.where(discounted, discount, np.nan),
                "channel": channel,
            }
        )
        items = pd.DataFrame(
            {
                "order_id": ids[l_order],
                "line_number": l_no,
                "product_id": [
                    f"p{c:02d}{x:03d}"
                    for c, x in zip(
                        cat, rng.integers(0, PRODUCTS_PER_CATEGORY, len(cat)), strict=True
                    )
                ],
                "category": CATEGORIES[cat],
                "quantity": qty,
                "unit_price": unit,
            }
        )
        orders["person_id"] = self.pid[person]
        return orders, items

    # -- tickets, consent, erasure -------------------------------------------------------
    def tickets(self, p: pd.DataFrame) -> pd.DataFrame:
        rng, n = self.rng, self.n
        arch = p["arch"].to_numpy()
        count = rng.poisson(np.where(arch == 4, 0.5, 0.2))
        person = np.repeat(np.arange(n), count)
        m = len(person)
        tone = _pick(rng, np.array(["negative", "neutral", "positive"]), m, [0.35, 0.4, 0.25])
        texts = [
            TICKET_TEXT[t][int(i) % len(TICKET_TEXT[t])]
            for t, i in zip(tone, rng.integers(0, 6, m), strict=True)
        ]
        base = {"negative": 1, "neutral": 3, "positive": 4}
        score = np.array([base[t] for t in tone]) + rng.integers(0, 2, m)
        ts = self._days_to_ts(p["start_day"].to_numpy()[person], p["end_day"].to_numpy()[person])
        # The complaints of the planted churn mechanism: negative, on their day.
        crng = np.random.default_rng([self.cfg.seed, int(self.pid[0]), 21])
        complainer = np.flatnonzero(p["complaint_day"].to_numpy() >= 0)
        day = p["complaint_day"].to_numpy()[complainer]
        person = np.concatenate([person, complainer])
        tone = np.concatenate([tone, np.full(len(complainer), "negative")])
        texts += [
            TICKET_TEXT["negative"][int(i) % len(TICKET_TEXT["negative"])]
            for i in crng.integers(0, 6, len(complainer))
        ]
        score = np.concatenate([score, 1 + crng.integers(0, 2, len(complainer))])
        ts = np.concatenate([ts, self._days_to_ts(day, day)])
        m = len(person)
        return pd.DataFrame(
            {
                "ticket_id": _hex_ids("tkt_", self.pid[0] * 16 + np.arange(m), 101),
                "email": _email_variant(rng, p["email"].to_numpy(dtype=object)[person]),
                "created_at": _iso(ts).to_numpy(zero_copy_only=False),
                "channel": _pick(rng, np.array(["email", "chat", "phone"]), m),
                "subject": [s for s, _ in texts],
                "body": [b for _, b in texts],
                "status": _pick(rng, np.array(["open", "pending", "solved"]), m, [0.1, 0.1, 0.8]),
                "satisfaction_score": np.where(rng.random(m) < 0.6, score, np.nan),
                "person_id": self.pid[person],
                "tone": tone,
            }
        )

    def consent(self, p: pd.DataFrame) -> pd.DataFrame:
        rng, n = self.rng, self.n
        grant = rng.random((n, len(CONSENT_PURPOSES))) < CONSENT_GRANT
        grant[:, 1] &= p["has_phone"].to_numpy()
        person, purpose = np.nonzero(grant)
        granted_at = self._days_to_ts(
            p["start_day"].to_numpy()[person], p["start_day"].to_numpy()[person] + 2
        )
        revoke = rng.random(len(person)) < 0.12
        revoked_at = self._days_to_ts(
            p["start_day"].to_numpy()[person][revoke], np.full(int(revoke.sum()), HORIZON_DAYS - 1)
        )
        person_all = np.concatenate([person, person[revoke]])
        m = len(person_all)
        return pd.DataFrame(
            {
                "consent_event_id": _hex_ids("cns_", self.pid[0] * 16 + np.arange(m), 113),
                "email": _email_variant(rng, p["email"].to_numpy(dtype=object)[person_all]),
                "purpose": np.array(CONSENT_PURPOSES)[np.concatenate([purpose, purpose[revoke]])],
                "status": np.r_[
                    np.full(len(person), "granted"), np.full(int(revoke.sum()), "revoked")
                ],
                "recorded_at": _iso(np.concatenate([granted_at, revoked_at])).to_numpy(
                    zero_copy_only=False
                ),
                "source": np.r_[
                    np.full(len(person), "signup_form"),
                    np.full(int(revoke.sum()), "preference_center"),
                ],
            }
        )

    def erasures(self, p: pd.DataFrame) -> pd.DataFrame:
        rng = self.rng
        who = np.flatnonzero(rng.random(self.n) < 0.003)
        ts = self._days_to_ts(
            np.full(len(who), HORIZON_DAYS - 90), np.full(len(who), HORIZON_DAYS - 1)
        )
        return pd.DataFrame(
            {
                "request_id": _hex_ids("era_", self.pid[who], 127),
                "email": p["email"].to_numpy(dtype=object)[who],
                "requested_at": _iso(ts).to_numpy(zero_copy_only=False),
                "person_id": self.pid[who],
            }
        )


def generate(cfg: GeneratorConfig, progress: Callable[[int], None] | None = None) -> GenerateResult:
    """Write the landing files and truth for ``cfg``; the same config gives the same bytes."""
    out = Path(cfg.out)
    for table in TABLES:
        for fmt in FORMATS:
            (out / f"{table}.{fmt}").unlink(missing_ok=True)
    shutil.rmtree(out / "truth", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    writers = _Writers(cfg)
    cdf, _ = _day_cdf(cfg.reference_date)
    for start in range(0, cfg.customers, cfg.chunk_persons):
        stop = min(start + cfg.chunk_persons, cfg.customers)
        chunk = _Chunk(cfg, start, stop, cdf)
        persons = chunk.persons()
        contacts, contact_truth = chunk.contacts(persons)
        act = chunk.activity(persons)
        tickets = chunk.tickets(persons)
        erasures = chunk.erasures(persons)
        writers.write("crm_contacts", contacts, BREAKERS["crm_contacts"])
        writers.write("web_events", act["web_events"], BREAKERS["web_events"])
        writers.write("orders", act["orders"], BREAKERS["orders"])
        writers.write("order_items", act["order_items"], BREAKERS["order_items"])
        writers.write("support_tickets", tickets, BREAKERS["support_tickets"])
        writers.write("consent_events", chunk.consent(persons), BREAKERS["consent_events"])
        writers.write("erasure_requests", erasures, BREAKERS["erasure_requests"])
        writers.truth(
            "persons",
            persons[
                [
                    "person_id",
                    "archetype",
                    "first_name",
                    "last_name",
                    "email",
                    "country",
                    "date_of_birth",
                    "has_account",
                ]
            ],
        )
        writers.truth("contacts", contact_truth)
        writers.truth(
            "accounts",
            pd.DataFrame(
                {
                    "user_id": persons.loc[persons["has_account"], "account_id"],
                    "person_id": persons.loc[persons["has_account"], "person_id"],
                }
            ),
        )
        writers.truth("devices", act["devices"])
        writers.truth("orders", act["orders"][["order_id", "person_id"]])
        writers.truth("tickets", tickets[["ticket_id", "person_id", "tone"]])
        writers.truth("erasures", erasures[["request_id", "person_id"]])
        if progress:
            progress(stop - start)
    writers.close()
    bad = pd.DataFrame(writers.bad, columns=["table", "row_number", "kind"])
    return GenerateResult(
        out=out,
        rows=dict(writers.rows),
        bad_rows={t: int((bad["table"] == t).sum()) for t in TABLES},
    )
