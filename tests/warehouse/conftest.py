"""A small built warehouse shared by the CRM sync and privacy tests (each test copies it),
and a CRM emulator on 127.0.0.1 seeded from its landing files."""

import pytest

from segmint.sync.emulator import CrmEmulator, seed_from_landing
from tests.warehouse.helpers import built_warehouse


@pytest.fixture(scope="session")
def synced_source(tmp_path_factory):
    """400 generated persons, loaded, tone-scored and `dbt build`: (warehouse, landing)."""
    return built_warehouse(tmp_path_factory.mktemp("crm"), 400, seed=5)


@pytest.fixture
def crm(synced_source, monkeypatch, tmp_path):
    """The emulator, seeded with the landing's CRM contacts; every destination's environment
    points at it (also kept as ``crm.env``), file exports go to ``tmp_path/exports``."""
    _, landing = synced_source
    with CrmEmulator() as emulator:
        emulator.seed(seed_from_landing(landing))
        emulator.state.webhook_secret = "hook-secret"
        emulator.env = {
            "SEGMINT_HUBSPOT_URL": emulator.url,
            "SEGMINT_HUBSPOT_TOKEN": "token",
            "SEGMINT_SALESFORCE_URL": emulator.url,
            "SEGMINT_SALESFORCE_TOKEN": "token",
            "SEGMINT_WEBHOOK_URL": emulator.url + "/webhook",
            "SEGMINT_WEBHOOK_SECRET": "hook-secret",
            "SEGMINT_EXPORT_DIR": str(tmp_path / "exports"),
        }
        for var, value in emulator.env.items():
            monkeypatch.setenv(var, value)
        yield emulator
