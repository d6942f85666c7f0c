"""Quality gates: the suites, the DuckDB shim, and faults injected into a healthy warehouse."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from segmint.contracts import contracts
from segmint.quality import gx_duckdb
from segmint.quality.suites import (
    SUITES_DIR,
    ExpectationSpec,
    Suite,
    SuiteError,
    load_suite,
    load_suites,
)
from segmint.quality.validate import SKIPPED_EMPTY, band, validate
from segmint.reference import SEEDS_DIR
from tests.warehouse.helpers import built_warehouse


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """A healthy warehouse validated twice: the baseline distribution faults are judged by."""
    warehouse, _ = built_warehouse(tmp_path_factory.mktemp("quality"), persons=300, seed=21)
    with duckdb.connect(str(warehouse)) as con:
        # dbt alone does not cluster (the Dagster asset does): four clusters stand in for it.
        con.execute(
            "insert into marts.customer_segments select membership_id || '-c', customer_id, "
            "'cluster', 'Cluster ' || (hash(customer_id) % 4), "
            "'cluster_' || (hash(customer_id) % 4), member_since, as_of_date "
            "from marts.customer_segments where segment_type = 'lifecycle'"
        )
    for _ in range(2):
        results = validate(warehouse)
        failures = [o.describe() for r in results for o in r.blocking_failures]
        assert failures == []
    return warehouse


def test_every_shipped_suite_loads_and_names_its_relation_and_asset():
    suites = load_suites()
    assert len(suites) >= 7
    for suite in suites:
        assert suite.relation.count(".") == 1 and "/" in suite.asset
        assert suite.blocking


def test_a_suite_without_kind_is_refused_with_file_and_position(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({
        "name": "bad", "meta": {"relation": "marts.x", "asset": "marts/x"},
        "expectations": [{"type": "expect_table_row_count_to_be_between",
                          "kwargs": {"min_value": 1}}],
    }))  # fmt: skip
    with pytest.raises(SuiteError, match=r"bad.json: expectations\[0\].*meta.kind"):
        load_suite(path)


def test_the_duckdb_shim_is_still_needed(healthy):
    """When this fails, GX reads DuckDB results correctly on its own: delete gx_duckdb."""
    suite = Suite(
        name="shim_probe", relation="staging.stg_shop__orders", asset="staging/stg_shop__orders",
        key=None, description="",
        expectations=[ExpectationSpec("expect_column_values_to_be_between",
                                      {"column": "total_amount", "min_value": 0},
                                      {"kind": "invariant"}, 0)],
    )  # fmt: skip
    gx_duckdb.ENABLED = False
    try:
        (without,) = validate(healthy, [suite], record=False)
    finally:
        gx_duckdb.ENABLED = True
    (with_shim,) = validate(healthy, [suite], record=False)
    assert with_shim.passed
    assert not without.passed, "GX now works on DuckDB without the shim"


# Each fault: SQL that corrupts a healthy warehouse, the suite that must stop the pipeline,
# and the expectation that must say why.
FAULTS = {
    "null email spike": (
        "update raw.crm_contacts set email = null where _source_row % 10 < 5",
        "stg_crm__contacts", "expect_column_values_to_not_be_null(email)"),
    "contacts volume drop": (
        "delete from raw.crm_contacts where _source_row % 10 < 7",
        "stg_crm__contacts", "expect_table_row_count_to_be_between"),
    "negative amounts": (
        "update raw.orders set total_amount = -total_amount where _source_row % 7 = 0",
        "stg_shop__orders", "expect_column_values_to_be_between(total_amount)"),
    "negative discounts": (
        "update raw.orders set discount_amount = -5 where _source_row % 7 = 0",
        "stg_shop__orders", "expect_column_values_to_be_between(discount_amount)"),
    "future order timestamps": (
        "update raw.orders set ordered_at = '2031-01-01T00:00:00Z' where _source_row % 50 = 0",
        "stg_shop__orders", "expect_column_max_to_be_between(ordered_at)"),
    "unknown order status": (
        "update raw.orders set status = 'lost_in_space' where _source_row % 9 = 0",
        "stg_shop__orders", "expect_column_values_to_be_in_set(order_status)"),
    "unknown currency": (
        "update raw.orders set currency = 'XYZ' where _source_row % 9 = 0",
        "stg_shop__orders", "expect_column_values_to_be_in_set(currency_code)"),
    "emptied source": (
        "delete from raw.orders",
        "stg_shop__orders", "expect_table_row_count_to_be_between"),
    "satisfaction out of range": (
        "update raw.support_tickets set satisfaction_score = 9 where _source_row % 5 = 0",
        "stg_support__tickets", "expect_column_values_to_be_between(satisfaction_score)"),
    "future tickets": (
        "update raw.support_tickets set created_at = '2031-01-01T00:00:00Z' "
        "where _source_row % 5 = 0",
        "stg_support__tickets", "expect_column_max_to_be_between(created_at)"),
    "unknown consent purpose": (
        "update raw.consent_events set purpose = 'telepathy' where _source_row % 5 = 0",
        "stg_privacy__consent_events", "expect_column_values_to_be_in_set(consent_purpose)"),
    "scroll depth out of range": (
        "update staging.stg_web__events set scroll_depth_pct = 150 where event_id like '%0'",
        "stg_web__events", "expect_column_values_to_be_between(scroll_depth_pct)"),
    "events without device": (
        "update staging.stg_web__events set anonymous_id = null where event_id like '%1'",
        "stg_web__events", "expect_column_values_to_not_be_null(anonymous_id)"),
    "future events": (
        "update staging.stg_web__events set occurred_at = timestamp '2031-01-01' "
        "where event_id like '%2'",
        "stg_web__events", "expect_column_max_to_be_between(occurred_at)"),
    "shifted monetary distribution": (
        "update marts.customer_profile set monetary = monetary * 5",
        "customer_profile", "expect_column_mean_to_be_between(monetary)"),
    "negative engagement": (
        "update marts.customer_profile set engagement_score = -1 where tenure_days % 3 = 0",
        "customer_profile", "expect_column_values_to_be_between(engagement_score)"),
    "conversion above one": (
        "update marts.customer_profile set conversion_rate_90d = 1.5 "
        "where conversion_rate_90d is not null",
        "customer_profile", "expect_column_values_to_be_between(conversion_rate_90d)"),
    "every customer in one segment": (
        "update marts.customer_segments set segment_name = 'active' "
        "where segment_type = 'lifecycle'",
        "customer_segments", "largest_lifecycle_segment_share"),
    "customer without lifecycle stage": (
        "delete from marts.customer_segments where segment_type = 'lifecycle' "
        "and customer_id in (select customer_id from marts.customer_segments limit 3)",
        "customer_segments", "one_lifecycle_stage_per_customer"),
    "customer in two rfm segments": (
        "insert into marts.customer_segments select membership_id || 'x', customer_id, "
        "segment_type, 'Lost', 'rfm_lost', member_since, as_of_date from marts.customer_segments "
        "where segment_type = 'rfm' and segment_name <> 'Lost' limit 2",
        "customer_segments", "at_most_one_rfm_segment_per_customer"),
    "one-segment clustering": (
        "update marts.customer_segments set segment_name = 'Everyone' "
        "where segment_type = 'cluster'",
        "customer_segments", "largest_cluster_segment_share"),
    "erased customer still segmented": (
        "update marts.dim_customers set is_erased = true where customer_id in "
        "(select customer_id from marts.customer_segments limit 1)",
        "customer_segments", "no_erased_customer_in_a_segment"),
}  # fmt: skip


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_each_fault_fails_a_blocking_expectation_naming_table_and_rule(healthy, fault, tmp_path):
    sql, suite_name, expectation = FAULTS[fault]
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(healthy, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(sql)
    (suite,) = [s for s in load_suites() if s.name == suite_name]
    (result,) = validate(warehouse, [suite], record=False)
    failed = {o.expectation: o for o in result.blocking_failures}
    assert expectation in failed, [o.describe() for o in result.outcomes]
    message = failed[expectation].describe()
    assert suite.relation in message and expectation in message
    if fault == "unknown currency":  # the message names the currency and the seed to edit
        assert "XYZ" in message and "seeds/fx_rates.csv" in message


def test_validate_command_exits_nonzero_and_names_the_failure(healthy, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(healthy, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(FAULTS["negative amounts"][0])
    cli = [str(Path(sys.executable).parent / "segmint"), "validate", "--warehouse", str(warehouse),
           "--docs", str(tmp_path / "docs")]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200"}
    bad = subprocess.run([*cli, "--suite", "stg_shop__orders"], capture_output=True, text=True,
                         env=env, timeout=300)  # fmt: skip
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert (
        "BLOCKING staging.stg_shop__orders: expect_column_values_to_be_between(total_amount)"
        in bad.stdout
    )
    assert (tmp_path / "docs" / "index.html").exists()
    good = subprocess.run([*cli, "--suite", "stg_crm__contacts"], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    assert good.returncode == 0, good.stdout + good.stderr


def _fresh_history(healthy: Path, tmp_path: Path) -> Path:
    """A copy of the healthy warehouse that has never been validated."""
    warehouse = tmp_path / "fresh.duckdb"
    shutil.copy(healthy, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table quality.expectation_observations")
    return warehouse


def _contacts_suite():
    (suite,) = [s for s in load_suites() if s.name == "stg_crm__contacts"]
    return suite


SKEW = "update raw.crm_contacts set email = null where _source_row % 10 < 6"


def test_stable_skew_passes_from_the_first_run_and_sudden_skew_blocks(healthy, tmp_path):
    skewed = _fresh_history(healthy, tmp_path)
    with duckdb.connect(str(skewed)) as con:
        con.execute(SKEW)
    first, second = (validate(skewed, [_contacts_suite()])[0] for _ in range(2))
    assert first.passed and second.passed, [o.describe() for o in second.outcomes]
    (email,) = [o for o in second.outcomes if o.expectation.endswith("(email)")]
    assert email.metric_value > 0.5 and "baseline" in email.note  # checked, not just recorded

    sudden = tmp_path / "sudden.duckdb"
    shutil.copy(healthy, sudden)  # two healthy runs of history, then the same skew
    with duckdb.connect(str(sudden)) as con:
        con.execute(SKEW)
    (result,) = validate(sudden, [_contacts_suite()], record=False)
    assert [o.expectation for o in result.blocking_failures] == [
        "expect_column_values_to_not_be_null(email)"
    ]


def test_accept_makes_a_changed_distribution_the_new_normal(healthy, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(healthy, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(SKEW)
    (blocked,) = validate(warehouse, [_contacts_suite()])
    assert not blocked.passed
    (accepted,) = validate(warehouse, [_contacts_suite()], accept=True)
    assert not accepted.passed  # the verdict stands; the value joins the baseline
    # With runs=5 the baseline is now 2 healthy and 1 skewed value: still blocking ...
    (still,) = validate(warehouse, [_contacts_suite()], record=False)
    assert not still.passed
    for _ in range(2):
        validate(warehouse, [_contacts_suite()], accept=True)
    # ... and with the skewed values the majority, the median has moved: it passes.
    (now,) = validate(warehouse, [_contacts_suite()], record=False)
    assert now.passed, [o.describe() for o in now.blocking_failures]


def test_an_empty_source_is_skipped_visibly_but_an_emptied_one_blocks(healthy, tmp_path):
    (tickets,) = [s for s in load_suites() if s.name == "stg_support__tickets"]
    never = _fresh_history(healthy, tmp_path)
    with duckdb.connect(str(never)) as con:
        con.execute("delete from raw.support_tickets")
    (result,) = validate(never, [tickets])
    assert result.skipped == SKIPPED_EMPTY and result.passed and result.outcomes == []

    emptied = tmp_path / "emptied.duckdb"
    shutil.copy(healthy, emptied)
    with duckdb.connect(str(emptied)) as con:
        con.execute("delete from raw.support_tickets")
    (result,) = validate(emptied, [tickets], record=False)
    assert result.skipped is None
    assert "expect_table_row_count_to_be_between" in {
        o.expectation for o in result.blocking_failures
    }


def test_band_is_the_tolerance_or_the_robust_spread_whichever_is_wider():
    assert band([100, 100, 100], {"min_ratio": 0.5, "max_ratio": 2}, 3) == (50, 200)
    # A metric that always moved a lot gets a wider band than the ratio alone.
    low, high = band([100, 40, 160], {"min_ratio": 0.9, "max_ratio": 1.1}, 3)
    assert low < 0 and high > 260
    # Shares: absolute change; null shares: only an increase is bounded.
    assert band([0.4, 0.4], {"max_change": 0.25}, 3) == pytest.approx((0.15, 0.65))
    assert band([0.05], {"max_increase": 0.15}, 3) == (None, pytest.approx(0.2))
    # From a median of zero, growth is a new signal, not drift: no upper bound.
    assert band([0.0, 0.0], {"min_ratio": 0.2, "max_ratio": 5}, 3) == (0.0, None)


def test_thresholds_file_downgrades_an_expectation_without_editing_the_suite(tmp_path):
    suites_dir = tmp_path / "expectations"
    shutil.copytree(SUITES_DIR, suites_dir)
    thresholds = yaml.safe_load((suites_dir / "thresholds.yml").read_text())
    thresholds["expectations"]["stg_shop__orders"] = {
        "expect_column_values_to_be_between(total_amount)": {"severity": "warning"},
        "expect_column_values_to_be_between(discount_amount)": {"severity": "off"},
    }
    (suites_dir / "thresholds.yml").write_text(yaml.safe_dump(thresholds))
    (orders,) = [s for s in load_suites(suites_dir) if s.name == "stg_shop__orders"]
    by_label = {e.label: e for e in orders.expectations}
    assert by_label["expect_column_values_to_be_between(total_amount)"].severity == "warning"
    assert "expect_column_values_to_be_between(discount_amount)" not in by_label
    assert by_label["expect_column_values_to_be_in_set(order_status)"].severity == "blocking"

    thresholds["expectations"]["stg_shop__orders"] = {"no_such_rule": {"severity": "off"}}
    (suites_dir / "thresholds.yml").write_text(yaml.safe_dump(thresholds))
    with pytest.raises(SuiteError, match=r"thresholds.yml.*stg_shop__orders.*no_such_rule"):
        load_suites(suites_dir)


def test_value_sets_come_from_their_one_source_of_truth():
    suites = {s.name: s for s in load_suites()}
    by_label = lambda suite: {e.label: e for e in suites[suite].expectations}  # noqa: E731
    currencies = by_label("stg_shop__orders")["expect_column_values_to_be_in_set(currency_code)"]
    with (SEEDS_DIR / "fx_rates.csv").open() as fh:
        assert sorted(currencies.kwargs["value_set"]) == sorted(
            row["currency_code"] for row in csv.DictReader(fh)
        )
    statuses = by_label("stg_shop__orders")["expect_column_values_to_be_in_set(order_status)"]
    assert (
        statuses.kwargs["value_set"] == contracts()["orders"].schema["properties"]["status"]["enum"]
    )
    purposes = by_label("stg_privacy__consent_events")[
        "expect_column_values_to_be_in_set(consent_purpose)"
    ]
    assert purposes.meta["values_from"] == "seeds/consent_purposes.csv"


def test_failing_row_samples_carry_no_personal_data():
    """Samples reach Dagster's event log, which cannot be erased: personal values are
    replaced (by column, or any value holding an email), keys and other values kept."""
    from segmint.quality.validate import REDACTED, redact_sample

    rows = [
        {"contact_id": "hubspot:1", "email": "ann@example.org", "score": 9},
        {"destination_record_id": "file_export:bo@example.org", "tags": "segmint_x"},
    ]
    assert redact_sample(rows, "score") == [
        {"contact_id": "hubspot:1", "email": REDACTED, "score": 9},
        {"destination_record_id": REDACTED, "tags": "segmint_x"},
    ]
    assert redact_sample(["+44 20 7946 0123"], "phone") == [REDACTED]
    assert redact_sample(["lost_in_space", "x@y.org"], "order_status") == [
        "lost_in_space",
        REDACTED,
    ]


def test_data_docs_index_every_steps_results_and_keep_the_last_runs(healthy, tmp_path,
                                                                     monkeypatch):  # fmt: skip
    # Each quality step of a run validates in a context of its own: the site's index must
    # list the results of every step, not only the last one's.
    import segmint.quality.validate as validate_module

    warehouse = _fresh_history(healthy, tmp_path)
    docs = tmp_path / "docs"
    by_name = {s.name: s for s in load_suites()}
    validate(warehouse, [by_name["stg_shop__orders"]], docs_dir=docs, record=False)
    validate(warehouse, [by_name["customer_profile"]], docs_dir=docs, record=False)
    index = (docs / "index.html").read_text()
    assert "validations/stg_shop__orders/" in index
    assert "validations/customer_profile/" in index

    def pages(suite: str) -> list[Path]:
        return list((docs / "validations" / suite).rglob("*.html"))

    monkeypatch.setattr(validate_module, "DOCS_RUNS_KEPT", 2)
    for _ in range(2):
        validate(warehouse, [by_name["stg_shop__orders"]], docs_dir=docs, record=False)
    assert len(pages("stg_shop__orders")) == 2  # three runs, the oldest page removed
    assert len(pages("customer_profile")) == 1
