"""Cells already measured elsewhere: a study run over several sessions (or machines) measures
only what its import folders lack."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = ("ok", "oom", "infeasible")  # what a measurement ends as; `error` is a failure


def reusable_records(import_dirs: list[str], keys: list[str]) -> dict[str, str]:
    """For each cell key with a record in one of the folders (the last folder wins, as in the
    tables), that record's path. An `error` record is not reused: the cell is measured again.
    An OOM or infeasible record is a result and stands."""
    found = {}
    for folder in import_dirs:
        for key in keys:
            path = Path(folder) / f"{key}.json"
            if path.is_file() and record_status(path) in RESULTS:
                found[key] = str(path)
    return found


def record_status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        return None  # unreadable: measured again
