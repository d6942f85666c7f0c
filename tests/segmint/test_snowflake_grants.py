"""The Snowflake grants (`segmint snowflake grants`): every schema segmint writes has an
owner, BI tools read the marts and nothing else, clear-text activation data is read by the
sync alone. Snowflake's grants cannot run on the emulator; the statements are checked here."""

import re
from pathlib import Path

import pytest
import yaml

from segmint.snowflake import ROLE_NAMES, SCHEMA_OWNERS, grants_sql

ROOT = Path(__file__).resolve().parents[2]


def _schemas_segmint_writes() -> set[str]:
    """Schemas named by dbt's configuration and by the Python steps' table code."""
    found = set()
    project = yaml.safe_load((ROOT / "dbt_project.yml").read_text())

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "+schema":
                    found.add(value)
                walk(value)

    walk(project)
    for path in (ROOT / "snapshots").glob("*.yml"):
        found |= set(re.findall(r"^\s+schema: (\w+)", path.read_text(), re.M))
    patterns = (r'create schema if not exists (\w+)"', r'ensure_tables\(con, "(\w+)"',
                r'^(?:RAW_)?SCHEMA(?:, NAME)? = "(\w+)"')  # fmt: skip
    for path in (ROOT / "segmint").rglob("*.py"):
        text = path.read_text()
        for pattern in patterns:
            found |= set(re.findall(pattern, text, re.M))
    return found


def test_every_schema_segmint_writes_has_an_owner_role():
    written = _schemas_segmint_writes()
    assert {"raw", "privacy", "marts", "activation", "ml", "sync", "enrichment"} <= written
    assert written - set(SCHEMA_OWNERS) == set()
    statements = grants_sql("segmint", "xs_wh")
    for schema, owner in SCHEMA_OWNERS.items():
        assert (f"grant ownership on schema SEGMINT.{schema} to role {ROLE_NAMES[owner]} "
                "copy current grants;") in statements  # fmt: skip


@pytest.mark.parametrize("role", sorted(ROLE_NAMES))
def test_each_role_reads_only_what_it_needs(role):
    statements = grants_sql("segmint", "xs_wh", user="svc")
    name = ROLE_NAMES[role]
    schemas = {
        m.group(1)
        for s in statements
        if s.endswith(f"to role {name};") and (m := re.search(r"schema SEGMINT\.(\w+)", s))
    }
    owned = {s for s, owner in SCHEMA_OWNERS.items() if owner == role}
    expected = {"pipeline": owned, "sync": {"activation", "marts"} | owned, "bi": {"marts"}}
    assert schemas | owned == expected[role] | owned
    assert f"grant usage on warehouse XS_WH to role {name};" in statements
    assert f"grant usage on database SEGMINT to role {name};" in statements


def test_bi_never_reaches_personal_data_and_activation_is_the_syncs():
    statements = grants_sql("segmint", "xs_wh", user="svc")
    bi = [s for s in statements if s.endswith(f"to role {ROLE_NAMES['bi']};")]
    for schema in ("raw", "staging", "intermediate", "privacy", "activation", "sync", "ml"):
        assert not [s for s in bi if f".{schema} " in s or f".{schema};" in s], schema
    readers = {s.rsplit(" ", 1)[-1] for s in statements if "in schema SEGMINT.activation" in s}
    assert readers == {f"{ROLE_NAMES['sync']};"}
    # The service user gets the pipeline and sync roles; a BI tool has its own user.
    assert f"grant role {ROLE_NAMES['bi']} to user svc;" not in statements
    assert f"grant role {ROLE_NAMES['pipeline']} to user svc;" in statements
