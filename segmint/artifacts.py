"""Fitted models stored in the warehouse (``ml.model_artifacts``), not only on a disk.

A model is pickled with joblib (compressed), base64-encoded and split into parts of at most
``PART_CHARS`` characters, one row each, so that it fits a Snowflake VARCHAR and binds the
same way on both warehouses. Reading joins the parts in order and checks the SHA-256 of the
bytes before unpickling: a damaged or partial copy is refused, never half loaded.

Only segmint writes this table; unpickling runs code, so the table must be writable by the
pipeline role alone (``segmint snowflake grants`` gives BI no access to schema ``ml``'s
writes).
"""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime

from segmint import tables
from segmint.cluster_tables import ARTIFACT_TABLES

RELATION = "ml.model_artifacts"
PART_CHARS = 4_000_000  # base64 characters per row; Snowflake's VARCHAR holds 16 MB


class ArtifactError(RuntimeError):
    """A stored artifact whose bytes do not match their checksum."""


def ensure_table(con) -> None:
    tables.ensure_tables(con, "ml", ARTIFACT_TABLES)


def encode(obj) -> tuple[list[str], str]:
    """The object's parts (base64 text) and the SHA-256 of its joblib bytes."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    data = buffer.getvalue()
    text = base64.b64encode(data).decode("ascii")
    parts = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
    return parts, hashlib.sha256(data).hexdigest()


def save(con, run_id: str, name: str, obj) -> str:
    """Store ``obj`` as artifact ``name`` of ``run_id``, replacing an earlier copy; returns
    its SHA-256. Data manipulation only: safe inside the caller's transaction once
    ``ensure_table`` has run."""
    import pandas as pd

    parts, digest = encode(obj)
    now = datetime.now(UTC).replace(tzinfo=None)
    frame = pd.DataFrame(
        {
            "run_id": run_id,
            "name": name,
            "part": range(len(parts)),
            "content": parts,
            "sha256": digest,
            "created_at": now,
        }
    )
    con.execute(f"delete from {RELATION} where run_id = ? and name = ?", [run_id, name])
    tables.insert_frame(con, RELATION, frame)
    return digest


def load(con, run_id: str, name: str):
    """The stored object, or None when the run has no such artifact."""
    if not tables.exists(con, "ml", "model_artifacts"):
        return None
    rows = con.execute(
        f"select part, content, sha256 from {RELATION} where run_id = ? and name = ? order by part",
        [run_id, name],
    ).fetchall()
    if not rows:
        return None
    import joblib

    if [r[0] for r in rows] != list(range(len(rows))):
        raise ArtifactError(f"{RELATION}: {run_id}/{name} has parts missing")
    data = base64.b64decode("".join(r[1] for r in rows))
    if hashlib.sha256(data).hexdigest() != rows[0][2]:
        raise ArtifactError(f"{RELATION}: {run_id}/{name} does not match its SHA-256")
    return joblib.load(io.BytesIO(data))
