import os

import dagster as dg

from orchestration.defs.automation import landing_files_sensor, new_landing_files
from orchestration.defs.resources import WarehouseResource


def test_new_and_changed_files_are_detected_once(tmp_path):
    (tmp_path / "orders.csv").write_text("order_id\n1\n")
    (tmp_path / "readme.txt").write_text("not data")
    changed, cursor = new_landing_files(tmp_path, None)
    assert changed == ["orders.csv"]
    assert new_landing_files(tmp_path, cursor)[0] == []
    (tmp_path / "web_events.csv").write_text("event_id\n1\n")
    os.utime(tmp_path / "orders.csv", ns=(1, 1))
    changed, _ = new_landing_files(tmp_path, cursor)
    assert changed == ["orders.csv", "web_events.csv"]


def test_sensor_requests_a_run_for_new_files_and_skips_otherwise(tmp_path):
    # The warehouse resource holds the warehouse for a run's duration (a context manager):
    # a sensor evaluation opens it like Dagster's daemon does, and takes no lock.
    warehouse = WarehouseResource(duckdb_path=str(tmp_path / "w.duckdb"), landing_dir=str(tmp_path))
    resources = {"warehouse": warehouse}
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
            assert isinstance(landing_files_sensor(ctx), dg.SkipReason)
            cursor = ctx.cursor
        (tmp_path / "orders_2026-11-02.parquet").write_bytes(b"x")
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
            request = landing_files_sensor(ctx)
            assert warehouse.warehouse.holder() is None
            cursor = ctx.cursor
        assert isinstance(request, dg.RunRequest)
        assert "orders_2026-11-02.parquet" in request.tags["segmint/new_files"]
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
            assert isinstance(landing_files_sensor(ctx), dg.SkipReason)
