import json

import fastjsonschema
import pytest

from segmint.contracts import CONTRACT_DIR, TABLES, contracts

# The required columns of the raw-data contract, as the README documents them.
DOCUMENTED_REQUIRED = {
    "crm_contacts": {"contact_id", "source_system", "created_at", "updated_at"},
    "web_events": {"event_id", "anonymous_id", "event_type", "occurred_at"},
    "orders": {"order_id", "ordered_at", "status", "total_amount"},
    "order_items": {"order_id", "line_number", "quantity", "unit_price"},
    "support_tickets": {"ticket_id", "created_at"},
    "consent_events": {"consent_event_id", "email", "purpose", "status", "recorded_at"},
    "erasure_requests": {"request_id", "email", "requested_at"},
}


def test_one_schema_file_per_table_and_no_strays():
    files = {p.name.removesuffix(".schema.json") for p in CONTRACT_DIR.glob("*.schema.json")}
    assert files == set(TABLES)


@pytest.mark.parametrize("table", TABLES)
def test_required_columns_match_the_documented_contract(table):
    assert set(contracts()[table].required) == DOCUMENTED_REQUIRED[table]


@pytest.mark.parametrize("table", TABLES)
def test_every_column_is_described(table):
    for col in contracts()[table].columns:
        assert col.description.strip(), f"{table}.{col.name} has no description"


def test_readme_documents_every_contract_column():
    doc = (CONTRACT_DIR.parents[1] / "docs" / "raw-data-contract.md").read_text()
    for table, contract in contracts().items():
        assert f"`{table}`" in doc
        for col in contract.columns:
            assert f"`{col.name}`" in doc, f"{table}.{col.name} missing from the contract doc"


GOOD_ORDER = {"order_id": "o", "ordered_at": "2026-01-01", "status": "completed", "total_amount": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"order_id": None}, "order_id"),
        ({"ordered_at": "2026-02-30"}, "ordered_at"),
        ({"status": "lost"}, "status"),
        ({"total_amount": -1}, "total_amount"),
        ({"total_amount": "1,5"}, "total_amount"),
        ({"email": "x#y"}, "email"),
    ],
)
def test_fast_and_explaining_validators_agree(change, field):
    contract = contracts()["orders"]
    row = {k: v for k, v in {**GOOD_ORDER, **change}.items() if v is not None}
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        contract.validate(row)
    assert [f for f, _ in contract.errors(row)] == [field]
    contract.validate(GOOD_ORDER)


def test_valid_row_passes_both_validators():
    contract = contracts()["web_events"]
    row = {
        "event_id": "e1",
        "anonymous_id": "a1",
        "event_type": "page_view",
        "occurred_at": "2026-01-01T10:00:00.123456+02:00",
        "properties": json.dumps({"order_id": "o1"}),
        "scroll_depth_pct": 100,
    }
    contract.validate(row)
    assert contract.errors(row) == []
