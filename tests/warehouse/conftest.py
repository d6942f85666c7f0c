"""A small built warehouse shared by the CRM sync and privacy tests (each test copies it)."""

import pytest

from tests.warehouse.helpers import built_warehouse


@pytest.fixture(scope="session")
def synced_source(tmp_path_factory):
    """400 generated persons, loaded, tone-scored and `dbt build`: (warehouse, landing)."""
    return built_warehouse(tmp_path_factory.mktemp("crm"), 400, seed=5)
