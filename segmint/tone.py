"""Tone of support tickets, scored with VADER (vaderSentiment), written to the warehouse.

SQL has no good answer for sentiment, so this small Python step scores each ticket's subject
and body once and keeps the result in ``enrichment.ticket_tones``; dbt reads it as a source.
A ticket is scored again only when its text changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from segmint import tables

# VADER's documented cut-offs on the compound score.
NEGATIVE_BELOW = -0.05
POSITIVE_ABOVE = 0.05
MODEL_NAME = "vaderSentiment 3.3"

SCHEMA, NAME = "enrichment", "ticket_tones"
TABLE = f"{SCHEMA}.{NAME}"
_COLUMNS = """
    ticket_id varchar primary key,
    text_hash varchar not null,
    compound_score double not null,
    tone varchar not null,
    model varchar not null,
    scored_at timestamp not null"""


@dataclass(frozen=True)
class ToneReport:
    scored: int
    unchanged: int
    by_tone: dict[str, int]


def tone_of(compound: float) -> str:
    if compound <= NEGATIVE_BELOW:
        return "negative"
    if compound >= POSITIVE_ABOVE:
        return "positive"
    return "neutral"


def score_texts(texts: pd.Series) -> pd.DataFrame:
    """Compound score (-1..1) and tone (negative / neutral / positive) per text."""
    analyzer = SentimentIntensityAnalyzer()
    compound = [analyzer.polarity_scores(t or "")["compound"] for t in texts.fillna("")]
    frame = pd.DataFrame({"compound_score": compound}, index=texts.index)
    frame["tone"] = frame["compound_score"].map(tone_of)
    return frame


def ensure_table(con) -> None:
    tables.ensure_tables(con, SCHEMA, {NAME: _COLUMNS})


def score_new_tickets(con) -> ToneReport:
    """Score every ticket in raw.support_tickets whose latest text has no score yet.

    ``con``: a DuckDB connection or a segmint.snowflake.SnowflakeConnection.
    """
    ensure_table(con)
    if not tables.exists(con, "raw", "support_tickets"):
        return ToneReport(0, 0, {})
    pending = con.execute(
        f"""
        with latest as (
            select
                trim(ticket_id) as ticket_id,
                coalesce(subject, '') || '. ' || coalesce(body, '') as ticket_text
            from raw.support_tickets
            qualify row_number() over (
                partition by trim(ticket_id) order by _loaded_at desc, _source_row desc
            ) = 1
        )
        select latest.ticket_id, latest.ticket_text, md5(latest.ticket_text) as text_hash
        from latest
        left join {TABLE} as scored on latest.ticket_id = scored.ticket_id
        where scored.ticket_id is null or scored.text_hash <> md5(latest.ticket_text)
        """
    ).df()
    total = con.execute("select count(distinct trim(ticket_id)) from raw.support_tickets")
    unchanged = total.fetchall()[0][0] - len(pending)
    if pending.empty:
        return ToneReport(0, unchanged, {})
    scores = score_texts(pending["ticket_text"])
    rows = pd.concat([pending[["ticket_id", "text_hash"]], scores], axis=1)
    rows["model"] = MODEL_NAME
    rows["scored_at"] = datetime.now(UTC).replace(tzinfo=None)
    # Registered before the transaction (tables.transaction says why).
    with tables.registered(con, {"scored_rows": rows}), tables.transaction(con):
        con.execute(f"delete from {TABLE} where ticket_id in (select ticket_id from scored_rows)")
        con.execute(
            f"""
            insert into {TABLE} (ticket_id, text_hash, compound_score, tone, model, scored_at)
            select ticket_id, text_hash, compound_score, tone, model, scored_at
            from scored_rows
            """
        )
    return ToneReport(len(rows), unchanged, rows["tone"].value_counts().to_dict())
