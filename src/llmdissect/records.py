"""The result record: one JSON file per measured cell, written atomically (see DESIGN.md)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

SCHEMA_VERSION = 1
STATUSES = ("ok", "oom", "infeasible", "error")
RANDOM_WEIGHTS_NOTE = "Weights are random: runtime does not depend on their values."


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def make_record(
    key: str,
    cell: dict,
    status: str,
    metrics: dict,
    settings: dict,
    environment: dict,
    started_at: str,
    started_monotonic: float,
    reason: str | None = None,
) -> dict:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    return {
        "schema_version": SCHEMA_VERSION,
        "key": key,
        "cell": cell,
        "status": status,
        # an ok cell may still say something (a few failed requests within the allowed share)
        "reason": reason or (None if status == "ok" else "no reason given"),
        "metrics": metrics,
        "settings": settings,
        "environment": environment,
        "started_at": started_at,
        "duration_s": round(time.monotonic() - started_monotonic, 3),
        "note": RANDOM_WEIGHTS_NOTE,
    }


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@cache
def record_schema() -> dict:
    text = resources.files("llmdissect").joinpath("record.schema.json").read_text()
    return json.loads(text)


def record_errors(record: dict) -> list[str]:
    """Every way a record breaks the contract, as readable lines (empty when valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(record_schema())
    return [
        f"{'/'.join(map(str, err.absolute_path)) or '(top)'}: {err.message}"
        for err in validator.iter_errors(record)
    ]


def read_record(path: Path) -> dict:
    with open(path) as f:
        record = json.load(f)
    errors = record_errors(record)
    if errors:
        raise ValueError(f"{path} is not a valid result record: " + "; ".join(errors))
    return record
