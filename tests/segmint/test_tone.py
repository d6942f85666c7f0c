"""Ticket tone: VADER scores, written once per ticket text."""

import duckdb
import pandas as pd

from segmint.load import load
from segmint.tone import score_new_tickets, score_texts, tone_of


def test_tone_follows_vaders_documented_cutoffs():
    assert tone_of(-0.05) == "negative"
    assert tone_of(-0.049) == "neutral"
    assert tone_of(0.049) == "neutral"
    assert tone_of(0.05) == "positive"
    scores = score_texts(
        pd.Series(["This is terrible and I am angry.", "Wonderful, thanks a lot!", None])
    )
    assert scores["tone"].tolist() == ["negative", "positive", "neutral"]


def _score(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        return score_new_tickets(con)


def test_tickets_are_scored_once_and_again_when_their_text_changes(clean_landing, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    load(clean_landing.out, warehouse)
    first = _score(warehouse)
    tickets = clean_landing.rows["support_tickets"]
    assert first.scored == tickets > 20 and first.unchanged == 0
    assert _score(warehouse).scored == 0

    con = duckdb.connect(str(warehouse))
    truth = pd.read_parquet(clean_landing.out / "truth" / "tickets.parquet")
    scored = con.execute("select ticket_id, tone from enrichment.ticket_tones").df()
    both = truth.merge(scored, on="ticket_id", suffixes=("_truth", "_vader"))
    assert len(both) == tickets
    negative = both[both.tone_truth == "negative"]
    assert len(negative) > 5 and (negative.tone_vader == "negative").all()
    (ticket_id,) = con.execute(
        "select ticket_id from raw.support_tickets order by ticket_id limit 1"
    ).fetchall()[0]
    con.execute(
        "update raw.support_tickets set body = 'Awful. I am furious and want my money back.', "
        "_loaded_at = _loaded_at + interval 1 day where ticket_id = ?",
        [ticket_id],
    )
    con.close()
    again = _score(warehouse)
    assert again.scored == 1 and again.unchanged == tickets - 1
    con = duckdb.connect(str(warehouse), read_only=True)
    tone = con.execute(
        "select tone from enrichment.ticket_tones where ticket_id = ?", [ticket_id]
    ).fetchall()
    con.close()
    assert tone == [("negative",)]
