"""Measure one training cell end to end: batch search if asked, the timed run, the record."""

from __future__ import annotations

import json
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..cells import TrainingCell
from ..environment import collect_manifest
from ..records import make_record, now_iso, read_record, write_json_atomic
from .batch_search import max_batch_search, predicted_batch_search
from .memory import search_memory
from .probe import first_line, run_probe
from .repeats import repeating
from .spec import TrainSpec


@dataclass
class SearchSettings:
    """The largest-batch search; defaults are the schema's (pretrain.max_batch_search)."""

    start: int = 1
    limit: int = 256
    fit_check_steps: int = 2  # the optimizer state exists only after the first step
    method: str = "predicted"  # or "bisect": doubling then bisection, no memory readings


@dataclass
class ProbeLimits:
    timeout_s: float = 3600.0
    retries: int = 1  # runs again after a crash (a signal, no outcome); not after an OOM


class ProbeFailed(Exception):
    def __init__(self, outcome: dict):
        super().__init__(outcome.get("reason"))
        self.outcome = outcome


def run_training_cell(
    cell: TrainingCell,
    spec: TrainSpec,
    search: SearchSettings,
    settings: dict,
    record_path: Path,
    steps_path: Path,
    workdir: Path,
    limits: ProbeLimits,
    log=print,
    largest_record: Path | None = None,
    repeats: int = 1,
    batch_one_record: Path | None = None,
) -> dict:
    """Whatever happens to the probes, the cell ends as a record: a crash is an error record,
    not a failed job. A "max" cell with `largest_record` runs at the batch that record found
    instead of searching; one whose batch-1 cell (`batch_one_record`) ran out of memory is
    out of memory without a probe. The final measurement runs `repeats` times, each its own
    process."""
    started_at, started = now_iso(), time.monotonic()
    settings = dict(settings, batch_mode=cell.batch)
    probe = repeating(probe_runner(workdir, limits), repeats)
    if largest_record:
        outcome = guarded(lambda: measure_at_recorded_batch(cell, spec, largest_record, probe))
    elif cell.batch == "max" and (failed := batch_one_failed(batch_one_record)):
        outcome = failed  # nothing fits: no probe spent on it
    else:
        outcome = guarded(lambda: measure_cell(cell, spec, search, settings, probe, log))
    return write_cell_record(
        cell, outcome, settings, record_path, steps_path, workdir, started_at, started, log
    )


def probe_runner(workdir: Path, limits: ProbeLimits):
    """run_probe with this cell's work folder, time limit and retries."""

    def probe(probe_spec: TrainSpec, name: str, keep_steps: bool) -> dict:
        return run_probe(probe_spec, workdir, name, keep_steps, limits.timeout_s, limits.retries)

    return probe


def guarded(measure) -> dict:
    """The outcome of `measure()`; if the harness itself fails, an error outcome with why."""
    try:
        return measure()
    except Exception as error:
        traceback.print_exc()
        return {"status": "error", "reason": f"the measurement failed: {first_line(error)}"}


def write_cell_record(
    cell, outcome: dict, settings: dict, record_path, steps_path, workdir, started_at, started, log
) -> dict:
    """The cell's record and steps from its outcome (the steps of the probe named "measure")."""
    if outcome["status"] == "ok":
        shutil.copyfile(Path(workdir) / "measure.steps.jsonl", steps_path)
    else:
        Path(steps_path).write_text("")  # the cell has no steps, but its output must exist
    settings = dict(settings, **outcome.get("details", {}))
    record = make_record(
        key=cell.key,
        cell=cell.as_dict(),
        status=outcome["status"],
        reason=outcome.get("reason"),
        metrics=outcome.get("metrics", {}),
        settings=settings,
        environment=outcome.get("environment") or collect_manifest(),
        started_at=started_at,
        started_monotonic=started,
    )
    write_json_atomic(Path(record_path), record)
    log(f"{cell.key}: {record['status']} {record['reason'] or ''}".rstrip())
    return record


def batch_one_failed(path: Path | None) -> dict | None:
    """The out-of-memory outcome of a largest batch whose batch-1 cell ran out of memory."""
    if path is None:
        return None
    try:  # status, reason and key are all it needs
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None  # unreadable: the search decides
    if record.get("status") != "oom":
        return None
    return {
        "status": "oom",
        "reason": f"batch 1 ran out of memory ({record['key']}: {record['reason']})"[:500],
    }


def recorded_batch(
    cell: TrainingCell, largest_record: Path | None
) -> tuple[int | None, str | None]:
    """The batch to run at, or why there is none: for "max", the batch another cell's search
    found (its record), so that the search runs once."""
    if cell.batch != "max":
        return int(cell.batch), None
    record = read_record(Path(largest_record))
    if record["status"] != "ok":
        return None, f"{record['key']} has no largest batch: it is {record['status']}"
    return record["metrics"]["batch_size"], None


def measure_at_recorded_batch(cell, spec, largest_record, probe) -> dict:
    batch, problem = recorded_batch(cell, largest_record)
    if problem:  # recorded, not a crash: the table shows why the cell is empty
        return {"status": "infeasible", "reason": problem}
    return probe(spec.with_batch(batch, spec.warmup_steps, spec.measured_steps), "measure", True)


def measure_cell(cell, spec, search, settings, probe, log) -> dict:
    if cell.batch == "max":
        try:
            result, seconds = search_largest(cell, spec, search, probe, log)
        except ProbeFailed as failed:
            return failed.outcome
        settings["batch_search"] = {
            "method": result.method,
            "probes": [
                dict(p.as_dict(), seconds=round(s, 1))
                for p, s in zip(result.probes, seconds, strict=True)
            ],
            "probe_count": len(result.probes),
            "seconds": round(sum(seconds), 1),
            "start": search.start,
            "limit": search.limit,
            "hit_limit": result.hit_limit,
        }
        if result.max_batch is None:
            return {"status": "oom", "reason": "not even batch 1 fits"}
        return measure_largest(spec, result.max_batch, settings, probe, log, cell.key)
    final_spec = spec.with_batch(int(cell.batch), spec.warmup_steps, spec.measured_steps)
    return probe(final_spec, "measure", True)


def search_largest(cell, spec, search, probe, log):
    """The search's result and each probe's wall seconds. Each probe is a short run (no warm-up,
    `fit_check_steps` steps) in a process of its own."""
    seconds = []

    def measure(batch: int) -> tuple[bool, float | None, float | None]:
        probe_spec = spec.with_batch(batch, warmup_steps=0, measured_steps=search.fit_check_steps)
        began = time.monotonic()
        outcome = probe(probe_spec, f"search_b{batch}", False)
        seconds.append(time.monotonic() - began)
        log(f"{cell.key}: batch {batch} -> {outcome['status']} ({seconds[-1]:.0f} s)")
        if outcome["status"] not in ("ok", "oom"):
            raise ProbeFailed(outcome)
        fits = outcome["status"] == "ok"
        return (fits, *search_memory(outcome.get("metrics") or {}))

    if search.method == "bisect":
        return max_batch_search(lambda b: measure(b)[0], search.start, search.limit), seconds
    return predicted_batch_search(measure, search.start, search.limit), seconds


def measure_largest(spec, batch, settings, probe, log, key) -> dict:
    """The full run can need a little more memory than the short fit check (allocator
    fragmentation over more steps), and a batch at the very edge can fit on one run and not on
    the next. When a full run or any of its repeats does not fit, step the batch down (about 6%
    of it, doubling the step after each further failure) until every run fits, then bisect the
    gap left with full runs: a few runs instead of one per batch size. The record lists the
    batches that ran out of memory this way (`full_run_oom`)."""
    fitted = None  # (batch, outcome) of the largest full run that fitted so far
    too_big = None  # the smallest batch whose full run ran out of memory
    step = max(1, batch // 16)
    while True:
        final_spec = spec.with_batch(batch, spec.warmup_steps, spec.measured_steps)
        outcome = probe(final_spec, "measure", True)
        status = "oom" if "oom" in outcome.get("repeat_statuses", ()) else outcome["status"]
        if status not in ("ok", "oom") or (status == "ok" and too_big is None):
            return outcome  # it fitted at once, or failed for another reason than memory
        if status == "ok":
            fitted = (batch, outcome)
        else:
            too_big = batch
            search = settings["batch_search"]
            search["full_run_oom"] = [*search.get("full_run_oom", []), batch]
        if fitted and too_big - fitted[0] <= 1:
            return fitted[1]
        if too_big == 1:
            return outcome
        if fitted:
            following = (fitted[0] + too_big) // 2
        else:
            following, step = max(1, batch - step), step * 2
        log(f"{key}: full run at batch {batch} -> {status}; trying {following}")
        batch = following
