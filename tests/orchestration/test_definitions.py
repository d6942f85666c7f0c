import os
from dataclasses import replace

import dagster as dg
import pytest

from orchestration.definitions import defs as load_definitions

defs = load_definitions()

# The whole asset graph. A change here is a change of public names: BI tools, the CRM sync
# and the Dagster UI rely on them. Update on purpose, never to make the test pass.
EXPECTED_ASSETS = {
    "raw/consent_events": "ingestion",
    "raw/crm_contacts": "ingestion",
    "raw/erasure_requests": "ingestion",
    "raw/order_items": "ingestion",
    "raw/orders": "ingestion",
    "raw/quarantined_rows": "ingestion",
    "raw/support_tickets": "ingestion",
    "raw/web_events": "ingestion",
    "privacy/erasure_log": "ingestion",
    "privacy/suppression_list": "ingestion",
    "privacy/pii_salt": "ingestion",
    "privacy/erasure_sweep": "serving",
    "intermediate/int_identity__components": "intermediate",
    "intermediate/int_identity__customer_id_history": "intermediate",
    "intermediate/int_identity__deterministic_components": "intermediate",
    "intermediate/int_identity__deterministic_edges": "intermediate",
    "intermediate/int_identity__edges": "intermediate",
    "intermediate/int_identity__excluded_identifiers": "intermediate",
    "intermediate/int_identity__excluded_links": "intermediate",
    "intermediate/int_identity__fs_parameters": "intermediate",
    "intermediate/int_identity__fs_u_probabilities": "intermediate",
    "intermediate/int_identity__match_candidates": "intermediate",
    "intermediate/int_identity__match_threshold": "intermediate",
    "intermediate/int_identity__pair_comparisons": "intermediate",
    "intermediate/int_identity__matching_records": "intermediate",
    "intermediate/int_identity__probabilistic_matches": "intermediate",
    "intermediate/int_identity__record_customers": "intermediate",
    "intermediate/int_identity__record_identifiers": "intermediate",
    "intermediate/int_identity__record_usable_keys": "intermediate",
    "intermediate/int_identity__records": "intermediate",
    "intermediate/int_identity__scored_pairs": "intermediate",
    "intermediate/int_identity__usable_identifiers": "intermediate",
    "marts/customer_merge_log": "marts",
    "marts/customer_outliers": "marts",
    "marts/dim_customer_identities": "marts",
    "marts/dim_customers": "marts",
    "marts/fct_orders": "marts",
    "marts/fct_web_events": "marts",
    "reference/countries": "seeds",
    "reference/country_aliases": "seeds",
    "reference/identity_blocklist": "seeds",
    "reference/identity_source_priority": "seeds",
    "reference/nicknames": "seeds",
    "staging/stg_crm__contacts": "staging",
    "staging/stg_privacy__consent_events": "staging",
    "staging/stg_privacy__erasure_requests": "staging",
    "staging/stg_privacy__suppressed_emails": "staging",
    "staging/stg_shop__order_items": "staging",
    "staging/stg_shop__orders": "staging",
    "staging/stg_support__tickets": "staging",
    "staging/stg_web__events": "staging",
    "enrichment/ticket_tones": "enrichment",
    "intermediate/int_segments__as_of": "intermediate",
    "intermediate/int_segments__customer_orders": "intermediate",
    "marts/customer_audiences": "marts",
    "marts/experiment_assignments": "marts",
    "marts/experiment_results": "marts",
    "marts/customer_behavior": "marts",
    "marts/customer_category_affinity": "marts",
    "marts/customer_profile": "marts",
    "marts/customer_rfm": "marts",
    "marts/customer_segments": "marts",
    "marts/fct_sessions": "marts",
    "marts/metricflow_time_spine": "marts",
    "marts/segment_kpi_base": "marts",
    "marts/segment_membership_history": "marts",
    "marts/segment_transitions": "marts",
    "reference/channel_groupings": "seeds",
    "reference/consent_purposes": "seeds",
    "reference/fx_rates": "seeds",
    "reference/rfm_segments": "seeds",
    "snapshots/snap_customer_segments": "snapshots",
    "staging/stg_enrichment__ticket_tones": "staging",
    "marts/customer_features": "marts",
    "marts/customer_nearest_centroid": "marts",
    "staging/stg_ml__customer_clusters": "staging",
    "ml/customer_clusters": "ml",
    "ml/segmentation_runs": "ml",
    "ml/cluster_profiles": "ml",
    "ml/cluster_centroids": "ml",
    "ml/cluster_scaling": "ml",
    "ml/cluster_projection": "ml",
    "ml/customer_predictions": "ml",
    "ml/prediction_runs": "ml",
    "ml/propensity_runs": "ml",
    "ml/propensity_models": "ml",
    "experiments/uplift_plots": "ml",
    "staging/stg_ml__customer_predictions": "staging",
    "activation/crm_segment_tags": "marts",
    "sync/hubspot": "sync",
    "sync/salesforce": "sync",
    "sync/webhook": "sync",
    "sync/file_export": "sync",
    "bi/read_copy": "serving",
}


def test_asset_graph_snapshot():
    graph = defs.resolve_asset_graph()
    found = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert found == EXPECTED_ASSETS


def test_erasure_runs_before_dbt_and_is_swept_before_the_bi_copy():
    """Ingestion carries out erasures before any dbt step (so no gate can hold one back);
    the sweep after the dbt steps comes before the BI copy."""
    graph = defs.resolve_asset_graph()
    suppression = dg.AssetKey(["privacy", "suppression_list"])
    assert (
        suppression
        in graph.get(dg.AssetKey(["staging", "stg_privacy__suppressed_emails"])).parent_keys
    )
    sweep = dg.AssetKey(["privacy", "erasure_sweep"])
    assert sweep in graph.get(dg.AssetKey(["bi", "read_copy"])).parent_keys
    assert dg.AssetKey(["marts", "dim_customer_identities"]) in graph.get(sweep).parent_keys


def test_the_ingestion_step_leaves_the_rewrite_to_a_sweep_in_the_same_run():
    """Whole-job runs (no selection: None from the UI and schedules, empty when launched in
    process, as `segmint run` does) and selections with the sweep defer the file's rewrite
    to it; a selection without the sweep does not."""
    from orchestration.defs.ingestion import sweep_follows

    sweep = dg.AssetKey(["privacy", "erasure_sweep"])
    raw = dg.AssetKey(["raw", "crm_contacts"])
    runs = {
        "whole job": None,
        "in process": frozenset(),
        "with the sweep": frozenset({raw, sweep}),
        "without it": frozenset({raw}),
    }
    follows = {
        name: sweep_follows(dg.DagsterRun(job_name="segmint_daily", asset_selection=selection))
        for name, selection in runs.items()
    }
    assert follows == {
        "whole job": True, "in process": True, "with the sweep": True, "without it": False,
    }  # fmt: skip


def test_the_development_salt_is_refused_outside_dev_and_ci():
    from segmint.config import DEV_PII_SALT, ConfigError, Settings

    base = Settings.from_env()
    assert base.check() is base  # ci target: allowed
    prod = replace(base, dbt_target="prod")
    with pytest.raises(ConfigError, match="SEGMINT_PII_SALT"):
        prod.check()
    assert replace(prod, pii_salt="a-secret").check().pii_salt != DEV_PII_SALT


def test_the_loaders_memory_limit_flows_from_the_environment_to_the_load_step(monkeypatch):
    """SEGMINT_LOAD_MEMORY_LIMIT is read once, by the settings; the resource carries it to
    the load step (the loader itself reads no environment)."""
    from orchestration.defs.resources import build_resources
    from segmint.config import LOAD_MEMORY_LIMIT, Settings

    monkeypatch.delenv("SEGMINT_LOAD_MEMORY_LIMIT", raising=False)
    assert Settings.from_env().load_memory_limit == LOAD_MEMORY_LIMIT
    monkeypatch.setenv("SEGMINT_LOAD_MEMORY_LIMIT", "1500MB")
    settings = Settings.from_env()
    assert settings.load_memory_limit == "1500MB"
    assert build_resources(settings)["warehouse"].load_memory_limit == "1500MB"


def test_the_snowflake_target_gives_every_step_snowflake_and_hides_its_secrets(
    tmp_path, monkeypatch
):
    from orchestration.defs.resources import build_resources
    from segmint.config import ConfigError, Settings
    from segmint.snowflake import SnowflakeWarehouse

    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "a-password")
    base = Settings.from_env()
    snowflake = replace(
        base,
        dbt_target="snowflake",
        pii_salt="a-secret",
        duckdb_path=tmp_path / "never.duckdb",
        snowflake=(("account", "acme"), ("user", "svc"), ("password", "a-password"),
                   ("database", "SEGMINT"), ("schema", "MAIN"), ("role", "SEGMINT"),
                   ("warehouse", "SEGMINT_WH")),
        snowflake_steps='{"load": {"role": "SEGMINT_LOADER", "warehouse": "LOAD_WH"}, '
                        '"quality": {"warehouse": "GATES_WH"}}',
    )  # fmt: skip
    resource = build_resources(snowflake)["warehouse"]
    # The password reaches Dagster as the name of its variable, never as a value.
    assert isinstance(resource.snowflake.password, dg.EnvVar)
    assert resource.snowflake.password.env_var_name == "SNOWFLAKE_PASSWORD"
    with resource.process_config_and_initialize_cm() as initialized:
        warehouse = initialized.warehouse
    assert isinstance(warehouse, SnowflakeWarehouse)
    assert dict(warehouse.parameters) == {"account": "acme", "user": "svc",
                                          "password": "a-password", "database": "SEGMINT",
                                          "schema": "MAIN", "role": "SEGMINT",
                                          "warehouse": "SEGMINT_WH"}  # fmt: skip
    # Each step connects with its own role and warehouse where configured, else the target's.
    load = dict(warehouse.for_step("load"))
    assert (load["role"], load["warehouse"], load["user"]) == ("SEGMINT_LOADER", "LOAD_WH", "svc")
    sync = dict(warehouse.for_step("sync"))
    assert (sync["role"], sync["warehouse"]) == ("SEGMINT", "SEGMINT_WH")
    _, engine = warehouse.sqlalchemy("quality")
    assert (engine["connect_args"]["role"], engine["connect_args"]["warehouse"]) == (
        "SEGMINT", "GATES_WH")  # fmt: skip
    assert engine["connect_args"]["session_parameters"]["QUERY_TAG"] == "segmint:quality"
    from_settings = snowflake.warehouse()  # the CLI's way: the same connections
    assert dict(from_settings.parameters) == dict(warehouse.parameters)
    assert from_settings.steps == warehouse.steps
    assert not (tmp_path / "never.duckdb").exists()
    # A misspelt step or parameter stops the code location from loading, naming it.
    for steps, named in (('{"loading": {"role": "R"}}', "unknown step 'loading'"),
                         ('{"load": {"rol": "R"}}', "step 'load' takes role and/or warehouse"),
                         ('{"load": ', "is not JSON")):  # fmt: skip
        with pytest.raises(ConfigError, match=named):
            build_resources(replace(snowflake, snowflake_steps=steps))
    # On DuckDB targets the Snowflake variables are not carried at all.
    assert build_resources(base)["warehouse"].snowflake.pairs() == ()


def test_staging_models_depend_on_the_raw_tables_ingestion_writes():
    graph = defs.resolve_asset_graph()
    parents = graph.get(dg.AssetKey(["staging", "stg_shop__order_items"])).parent_keys
    assert dg.AssetKey(["raw", "order_items"]) in parents
    parents = graph.get(dg.AssetKey(["staging", "stg_crm__contacts"])).parent_keys
    assert {
        dg.AssetKey(["raw", "crm_contacts"]),
        dg.AssetKey(["reference", "countries"]),
    } <= parents


def test_dbt_tests_are_asset_checks():
    graph = defs.resolve_asset_graph()
    checks = {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys}
    assert "staging/stg_shop__orders:unique_stg_shop__orders_order_id" in checks
    assert "staging/stg_web__events:not_null_stg_web__events_event_id" in checks
    # A singular test over several models is a check of the one its meta names, not an
    # observation with a warning in every run.
    assert "intermediate/int_identity__components:identity_graph_converged" in checks


def test_daily_schedule_and_landing_sensor_target_the_whole_graph():
    schedule = defs.resolve_schedule_def("segmint_daily_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.job_name == "segmint_daily"
    sensor = defs.resolve_sensor_def("landing_files_sensor")
    assert sensor.job_name == "segmint_daily"
    job = defs.resolve_job_def("segmint_daily")
    assert len(job.asset_layer.executable_asset_keys) == len(EXPECTED_ASSETS)


def test_every_launcher_runs_one_step_at_a_time_in_one_process():
    """One writer: the job and ad-hoc asset runs from the UI use the in-process executor."""
    assert defs.resolve_job_def("segmint_daily").executor_def is dg.in_process_executor
    assert defs.resolve_implicit_global_asset_job_def().executor_def is dg.in_process_executor


def test_the_bi_copy_is_published_after_the_last_mart():
    graph = defs.resolve_asset_graph()
    parents = graph.get(dg.AssetKey(["bi", "read_copy"])).parent_keys
    assert dg.AssetKey(["snapshots", "snap_customer_segments"]) in parents
    assert dg.AssetKey(["marts", "segment_transitions"]) in parents
    assert dg.AssetKey(["marts", "dim_customers"]) in parents


def test_clustering_sits_between_the_feature_mart_and_the_segment_models():
    graph = defs.resolve_asset_graph()
    clusters = dg.AssetKey(["ml", "customer_clusters"])
    assert dg.AssetKey(["marts", "customer_features"]) in graph.get(clusters).parent_keys
    staged = graph.get(dg.AssetKey(["staging", "stg_ml__customer_clusters"]))
    assert clusters in staged.parent_keys
    segments = graph.get(dg.AssetKey(["marts", "customer_segments"]))
    assert dg.AssetKey(["staging", "stg_ml__customer_clusters"]) in segments.parent_keys
    # The feature mart's blocking gates run before the clustering asset reads it.
    checks = {k.name for k in graph.asset_check_keys if k.asset_key.path[-1] == "customer_features"}
    assert "gx_customer_features" in checks


def test_sync_assets_follow_the_consent_gate_and_the_snapshot():
    graph = defs.resolve_asset_graph()
    tags = dg.AssetKey(["activation", "crm_segment_tags"])
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == tags}
    assert "gx_crm_segment_tags" in checks
    for name in ("hubspot", "salesforce", "webhook", "file_export"):
        parents = graph.get(dg.AssetKey(["sync", name])).parent_keys
        assert {tags, dg.AssetKey(["snapshots", "snap_customer_segments"])} <= parents


def test_importing_the_code_location_does_no_io_and_starts_no_process(tmp_path):
    """Dagster imports the module to find `defs`; the work happens when it calls it."""
    import subprocess
    import sys
    import textwrap

    probe = textwrap.dedent("""
        import sys
        import dagster  # the framework itself is allowed its own start-up
        events = []
        def hook(event, args):
            if event in ("subprocess.Popen", "os.mkdir", "os.system"):
                events.append((event, str(args)[:200]))
            elif event == "open" and (args[1] or "r") not in ("r", "rb") and args[1] is not None:
                events.append((event, str(args)[:200]))
            elif event == "open" and isinstance(args[2], int) and args[2] & 0o3:  # O_WRONLY/O_RDWR
                events.append((event, str(args)[:200]))
        sys.addaudithook(hook)
        import orchestration.definitions
        print(repr(events))
    """)
    env = {
        **__import__("os").environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "SEGMINT_DUCKDB_PATH": str(tmp_path / "w" / "segmint.duckdb"),
        "PYTHONDONTWRITEBYTECODE": "1",  # Python's own bytecode cache is not our I/O
    }
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert not (tmp_path / "home").exists() and not (tmp_path / "w").exists()


def test_quality_checks_run_one_step_per_dbt_step_and_keep_one_key_per_suite():
    from segmint.quality.suites import load_suites

    suites = load_suites()
    checks = [c for c in defs.asset_checks if c.node_def.name.startswith("gx_")]
    # One step per dbt step that builds a validated asset: one GX context validates its suites.
    assert {c.node_def.name for c in checks} <= {
        f"gx_dbt_{stage}" for stage in ("staging", "models", "segments", "history")
    }
    assert len(checks) < len(suites)
    specs = {spec.key.name: spec for c in checks for spec in c.check_specs}
    assert set(specs) == {f"gx_{s.name}" for s in suites}
    for suite in suites:
        spec = specs[f"gx_{suite.name}"]
        assert spec.asset_key.to_user_string() == suite.asset
        assert spec.blocking == suite.blocking
    assert specs["gx_stg_shop__orders"].blocking  # invariants on orders are blocking


def test_loading_the_code_location_leaves_the_heavy_libraries_to_the_steps(tmp_path):
    """Great Expectations, scikit-learn, matplotlib and pandas load when a step needs them."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from orchestration.definitions import defs\n"
        "defs().resolve_asset_graph()\n"
        "heavy = ('great_expectations', 'sklearn', 'matplotlib', 'pandas', 'scipy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {
        **__import__("os").environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "SEGMINT_DUCKDB_PATH": str(tmp_path / "w" / "segmint.duckdb"),
    }
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_manifest_is_stale_when_any_file_dbt_parses_changed(tmp_path):
    from types import SimpleNamespace

    from orchestration.defs.dbt_project import manifest_is_stale

    (tmp_path / "dbt_project.yml").write_text('name: p\ntest-paths: ["tests/dbt"]\n')
    for folder in ("models", "tests/dbt", "tests/python"):
        (tmp_path / folder).mkdir(parents=True)
    manifest = tmp_path / "target" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    project = SimpleNamespace(project_dir=str(tmp_path), manifest_path=manifest)
    assert not manifest_is_stale(project)

    def touched_after_the_parse(path):
        path.write_text("select 1")
        later = manifest.stat().st_mtime + 10
        os.utime(path, (later, later))

    touched_after_the_parse(tmp_path / "tests/python/test_x.py")  # dbt does not read it
    assert not manifest_is_stale(project)
    touched_after_the_parse(tmp_path / "tests/dbt/a_singular_test.sql")
    assert manifest_is_stale(project)


def test_the_modules_warmed_while_dbt_runs_exist_under_dbt_steps():
    """warm_imports leaves an import error to the step that imports the module, so a module
    renamed away would silently stop being warmed: each one named must be importable."""
    import importlib.util

    from orchestration.defs.dbt import STAGE_SELECTIONS, WARM_DURING

    assert set(WARM_DURING) <= set(STAGE_SELECTIONS)
    for modules in WARM_DURING.values():
        for module in modules:
            assert importlib.util.find_spec(module) is not None, module
