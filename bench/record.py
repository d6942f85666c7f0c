"""Adding a bench run to its results file (bench/results/*.md): appended or put first."""

from __future__ import annotations

from pathlib import Path


def append(results: Path, title: str, text: str) -> None:
    """Print ``text`` and append it to ``results``, created with ``title`` if missing."""
    print(text)
    results.parent.mkdir(parents=True, exist_ok=True)
    if not results.exists():
        results.write_text(title)
    with results.open("a") as fh:
        fh.write(text)


def prepend(results: Path, title: str, text: str) -> None:
    """Print ``text`` and put it first under the title of ``results`` (newest first)."""
    print(text)
    previous = results.read_text() if results.exists() else title
    head, _, rest = previous.partition("\n## ")
    results.write_text(head.rstrip() + "\n\n" + text + ("\n## " + rest if rest else ""))


# Run in the DAGSTER_HOME of a `segmint run` or `segmint demo`: the last run's status, its
# wall time (first step start to last step end) and each step's time, as JSON.
LAST_RUN_STEPS = """
import json, dagster as dg
with dg.DagsterInstance.get() as instance:
    run = instance.get_runs(limit=1)[0]
    stats = instance.get_run_step_stats(run.run_id)
    print(json.dumps({"status": run.status.value,
                      "pipeline": max(s.end_time for s in stats) - min(s.start_time for s in stats),
                      "steps": {s.step_key: s.end_time - s.start_time for s in stats}}))
"""
