"""Enrichment steps that need Python: the tone of support tickets."""

import dagster as dg

from orchestration.defs.resources import WarehouseResource


@dg.asset(
    key=["enrichment", "ticket_tones"],
    deps=[dg.AssetKey(["raw", "support_tickets"])],
    group_name="enrichment",
    kinds={"python"},
    description=(
        "Tone of each support ticket (negative / neutral / positive) scored with VADER "
        "(vaderSentiment); "
        "tickets are scored once, and again only when their text changes."
    ),
)
def ticket_tones(warehouse: WarehouseResource) -> dg.MaterializeResult:
    from segmint.tone import MODEL_NAME, score_new_tickets  # pandas loads when the step runs

    with warehouse.connect("ticket_tones") as con:
        report = score_new_tickets(con)
    return dg.MaterializeResult(
        metadata={
            "model": MODEL_NAME,
            "tickets_scored": report.scored,
            "tickets_unchanged": report.unchanged,
            **{f"scored_{tone}": count for tone, count in sorted(report.by_tone.items())},
        }
    )
