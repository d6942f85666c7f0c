"""The one place segmint works around Great Expectations on DuckDB.

GX 1.x opens a new SQLAlchemy connection per query for most dialects and reads results after
that connection is closed. duckdb-engine's results do not survive the close, so every metric
fails ("list index out of range") and every expectation reports failure with an empty result.
GX keeps one persisted connection for a fixed list of dialects (SQLite, SQL Server, ...);
adding DuckDB to that list fixes it. The list is GX-internal, so the patch lives here alone,
and tests/segmint/test_quality.py checks whether it is still needed on each GX upgrade.
"""

from __future__ import annotations

from great_expectations.execution_engine import sqlalchemy_execution_engine as _engine


class _DialectName(str):
    """A dialect name GX can compare with both strings and its own dialect enum."""

    @property
    def value(self) -> str:
        return str(self)


DUCKDB = _DialectName("duckdb")

# Switched off only by the test that checks whether GX still needs the patch.
ENABLED = True


def apply() -> None:
    """Patch GX when ENABLED (the default), else leave it as shipped."""
    if ENABLED:
        patch()
    else:
        unpatch()


def is_patched() -> bool:
    return DUCKDB in _engine._PERSISTED_CONNECTION_DIALECTS


def patch() -> None:
    """Make GX keep one persisted connection for DuckDB (idempotent)."""
    if not is_patched():
        _engine._PERSISTED_CONNECTION_DIALECTS = (*_engine._PERSISTED_CONNECTION_DIALECTS, DUCKDB)


def unpatch() -> None:
    """Undo patch() (used by the test that checks whether the patch is still needed)."""
    _engine._PERSISTED_CONNECTION_DIALECTS = tuple(
        d for d in _engine._PERSISTED_CONNECTION_DIALECTS if d is not DUCKDB
    )


def close(source) -> None:
    """Close every connection a GX SQL datasource holds to the warehouse file.

    With the persisted connection, GX's own ``close()`` disposes the pool but leaves the
    persisted connection open, and DuckDB keeps the file locked against other processes
    (dbt) for as long as this one lives.
    """
    engine = source.get_execution_engine()
    persisted = getattr(engine, "_connection", None)
    if persisted is not None:
        persisted.close()
        engine._connection = None
    engine.close()
    sa_engine = getattr(source, "_engine", None)
    if sa_engine is not None:
        sa_engine.dispose()
