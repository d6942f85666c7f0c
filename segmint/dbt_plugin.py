"""dbt-duckdb plugin: stores the PII salt in the warehouse when dbt connects (profiles.yml).

The hashing SQL reads the salt from ``privacy.pii_salt`` (macros/hash_pii.sql) instead of
having it pasted into SQL text, where it would end up in compiled files, dbt's manifest and
logs, and DuckDB's view definitions. dbt run by hand reads the salt from the environment
variable named by the plugin's ``salt_env`` setting, as the Dagster code location does; the
insert is parameterized, so the value is never part of a statement.
"""

from __future__ import annotations

import os
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from segmint.config import DEV_PII_SALT, PII_SALT_VAR
from segmint.privacy import store_salt


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.salt_env = plugin_config.get("salt_env", PII_SALT_VAR)

    def configure_connection(self, conn) -> None:
        store_salt(conn, os.environ.get(self.salt_env) or DEV_PII_SALT)
