"""Connections to the Snowflake target for segmint's Python steps.

Parameters come from the settings (the same variables as the ``snowflake`` target of
profiles.yml); this module never reads the environment. Statements bind their values on the
server (``paramstyle="qmark"``), so a value such as the PII salt never becomes statement text
or an entry in Snowflake's query history.
"""

from __future__ import annotations

from collections.abc import Iterable


def connect(parameters: Iterable[tuple[str, str]]):
    """A Snowflake connection from (parameter, value) pairs, server-side binding."""
    import snowflake.connector

    kwargs: dict[str, object] = dict(parameters)
    if not kwargs.get("account"):
        from segmint.config import ConfigError

        raise ConfigError("the snowflake target needs SNOWFLAKE_ACCOUNT (and its credentials)")
    if "port" in kwargs:
        kwargs["port"] = int(str(kwargs["port"]))
    return snowflake.connector.connect(**kwargs, paramstyle="qmark")
