"""Measure one profiled cell: pre-training steps at the cell's batch (for "max", the batch its
pre-training cell found), then a few under torch.profiler; the record, steps and trace."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from ..cells import TrainingCell
from ..records import now_iso, read_record
from ..training.cell import ProbeLimits, guarded, probe_runner, write_cell_record
from ..training.spec import TrainSpec


def profiled_batch(
    cell: TrainingCell, largest_record: Path | None
) -> tuple[int | None, str | None]:
    """The batch to profile at, or why there is none (the pre-training search found none)."""
    if cell.batch != "max":
        return int(cell.batch), None
    record = read_record(Path(largest_record))
    if record["status"] != "ok":
        return None, f"{record['key']} has no largest batch: it is {record['status']}"
    return record["metrics"]["batch_size"], None


def run_profile_cell(
    cell: TrainingCell,
    spec: TrainSpec,
    settings: dict,
    largest_record: Path | None,
    record_path: Path,
    steps_path: Path,
    trace_path: Path,
    workdir: Path,
    limits: ProbeLimits,
    log=print,
) -> dict:
    """`spec.options["profile"]` says how many steps are profiled and where the trace goes.
    Every output exists afterwards, a valid empty trace where no step was profiled."""
    started_at, started = now_iso(), time.monotonic()
    settings = dict(settings, batch_mode=cell.batch)
    batch, problem = profiled_batch(cell, largest_record)
    if problem:  # recorded, not a crash: the table shows why the cell is empty
        outcome = {"status": "infeasible", "reason": problem}
    else:
        probe = probe_runner(workdir, limits)
        full = spec.with_batch(batch, spec.warmup_steps, spec.measured_steps)
        outcome = guarded(lambda: probe(full, "measure", True))
    record = write_cell_record(
        cell, outcome, settings, record_path, steps_path, workdir, started_at, started, log
    )
    if not Path(trace_path).exists():  # the cell failed before its profiled steps
        gzip.open(trace_path, "wb").close()
    return record
