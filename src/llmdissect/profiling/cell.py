"""Measure one profiled cell: pre-training steps at the cell's batch (for "max", the batch its
pre-training cell found), then a few under torch.profiler; the record, steps and trace."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from ..cells import TrainingCell
from ..records import now_iso
from ..training.cell import (
    ProbeLimits,
    guarded,
    measure_at_recorded_batch,
    probe_runner,
    write_cell_record,
)
from ..training.repeats import repeating
from ..training.spec import TrainSpec


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
    repeats: int = 1,
) -> dict:
    """`spec.options["profile"]` says how many steps are profiled and where the trace goes.
    Every output exists afterwards, a valid empty trace where no step was profiled. With
    `repeats`, each repeat profiles its own steps; the trace is the last one's."""
    started_at, started = now_iso(), time.monotonic()
    settings = dict(settings, batch_mode=cell.batch)
    probe = repeating(probe_runner(workdir, limits), repeats)
    outcome = guarded(lambda: measure_at_recorded_batch(cell, spec, largest_record, probe))
    record = write_cell_record(
        cell, outcome, settings, record_path, steps_path, workdir, started_at, started, log
    )
    if not Path(trace_path).exists():  # the cell failed before its profiled steps
        gzip.open(trace_path, "wb").close()
    return record
