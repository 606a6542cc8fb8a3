"""Cells already measured elsewhere: a study run over several sessions (or machines) measures
only what its import folders lack."""

from __future__ import annotations

import json
from dataclasses import replace
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


def batch_one_record(config: dict, cell) -> Path | None:
    """A largest-batch cell's batch-1 twin's record, where one exists (this run's, or an import
    folder's that the run reuses): when batch 1 ran out of memory, so does every batch. Read at
    run time, not a DAG input, so a new batch-1 record never re-searches a finished cell."""
    if cell.batch != "max":
        return None
    twin = replace(cell, batch="1")
    if config["aggregate"]["reuse_imported"]:
        reused = reusable_records(config["aggregate"]["import_dirs"], [twin.key])
        if twin.key in reused:
            return Path(reused[twin.key])
    path = Path("results/records") / f"{twin.key}.json"
    return path if path.is_file() else None
