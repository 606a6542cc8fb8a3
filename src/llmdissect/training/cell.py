"""Measure one training cell end to end: batch search if asked, the timed run, the record."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..cells import TrainingCell
from ..environment import collect_manifest
from ..records import make_record, now_iso, write_json_atomic
from .batch_search import max_batch_search
from .probe import run_probe
from .spec import TrainSpec


@dataclass
class SearchSettings:
    start: int = 1
    limit: int = 64
    fit_check_steps: int = 2  # the optimizer state exists only after the first step


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
    probe_timeout_s: float,
    log=print,
    batch_size: int | None = None,
) -> dict:
    """`batch_size` runs a "max" cell at a batch found before (a profiled cell reuses the
    pre-training cell's search) instead of searching again."""
    started_at, started = now_iso(), time.monotonic()
    settings = dict(settings, batch_mode=cell.batch)
    if batch_size is not None:
        outcome = run_probe(
            spec.with_batch(batch_size, spec.warmup_steps, spec.measured_steps),
            workdir, "measure", True, probe_timeout_s,
        )  # fmt: skip
    else:
        outcome = measure_cell(cell, spec, search, settings, workdir, probe_timeout_s, log)
    if outcome["status"] == "ok":
        shutil.copyfile(workdir / "measure.steps.jsonl", steps_path)
    else:
        Path(steps_path).write_text("")  # the cell has no steps, but its output must exist
    settings.update(outcome.get("details", {}))
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
    write_json_atomic(record_path, record)
    log(f"{cell.key}: {record['status']} {record['reason'] or ''}".rstrip())
    return record


def measure_cell(cell, spec, search, settings, workdir, timeout_s, log) -> dict:
    if cell.batch == "max":

        def fits(batch: int) -> bool:
            probe_spec = spec.with_batch(
                batch, warmup_steps=0, measured_steps=search.fit_check_steps
            )
            outcome = run_probe(probe_spec, workdir, f"search_b{batch}", False, timeout_s)
            log(f"{cell.key}: batch {batch} -> {outcome['status']}")
            if outcome["status"] not in ("ok", "oom"):
                raise ProbeFailed(outcome)
            return outcome["status"] == "ok"

        try:
            result = max_batch_search(fits, search.start, search.limit)
        except ProbeFailed as failed:
            return failed.outcome
        settings["batch_search"] = {
            "probes": [{"batch": b, "fits": ok} for b, ok in result.probes],
            "limit": search.limit,
            "hit_limit": result.hit_limit,
        }
        if result.max_batch is None:
            return {"status": "oom", "reason": "not even batch 1 fits"}
        return measure_largest(spec, result.max_batch, settings, workdir, timeout_s, log, cell.key)
    final_spec = spec.with_batch(int(cell.batch), spec.warmup_steps, spec.measured_steps)
    return run_probe(final_spec, workdir, "measure", True, timeout_s)


def measure_largest(spec, batch, settings, workdir, timeout_s, log, key) -> dict:
    """The full run can need a little more memory than the short fit check (allocator
    fragmentation over more steps). When it does not fit, step the batch down (about 6% of it,
    doubling the step after each further failure) until a full run fits, then bisect the gap
    left with full runs: a few runs instead of one per batch size."""
    fitted = None  # (batch, outcome) of the largest full run that fitted so far
    too_big = None  # the smallest batch whose full run ran out of memory
    step = max(1, batch // 16)
    while True:
        final_spec = spec.with_batch(batch, spec.warmup_steps, spec.measured_steps)
        outcome = run_probe(final_spec, workdir, "measure", True, timeout_s)
        status = outcome["status"]
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
