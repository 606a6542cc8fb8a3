"""Profiled steps inside a probe process: after the timed steps, a few more under
torch.profiler; the trace is kept (gzipped) and summarized into the probe's metrics."""

from __future__ import annotations

import gzip
import os
import shutil
import statistics
from pathlib import Path

from ..training.loop import timed_step
from .module_marks import module_ranges
from .modules import module_times
from .operators import operator_times
from .phases import complete_events, load_trace, phase_split


def profile_steps(trainer, batches, device: str, active_steps: int, trace_path: Path) -> dict:
    """One warm-up step under the profiler (not kept), then `active_steps` kept ones, with the
    model's modules marked (Tables VI-VIII)."""
    # not *.json: a raw trace left by a failed step must not pass for a result record
    raw = Path(f"{trace_path}.{os.getpid()}.raw")
    try:
        times_ms = _profiled_steps(trainer, batches, device, active_steps, raw)
    except BaseException:
        raw.unlink(missing_ok=True)
        raise
    events = complete_events(load_trace(raw))  # parsed and filtered once, before it is packed
    with open(raw, "rb") as source, gzip.open(trace_path, "wb") as target:
        shutil.copyfileobj(source, target)
    raw.unlink()
    summary = phase_split(events)
    summary.update(module_times(events))
    summary.update(operator_times(events))
    summary["profiled_step_ms"] = statistics.median(times_ms)
    return summary


def _profiled_steps(trainer, batches, device: str, active_steps: int, raw: Path) -> list[float]:
    """Step times (ms) of the kept steps; the trace is exported to `raw` as they end."""
    from torch.profiler import ProfilerActivity, profile, schedule

    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    plan = schedule(wait=0, warmup=1, active=active_steps, repeat=1)
    # exported when the active steps end; the profiler keeps nothing after its last cycle
    export = lambda finished: finished.export_chrome_trace(str(raw))  # noqa: E731
    times_ms = []
    with (
        module_ranges(trainer.root_module()),
        profile(activities=activities, schedule=plan, on_trace_ready=export) as profiler,
    ):
        for index in range(1 + active_steps):
            ids, mask, labels, _ = next(batches)
            _, elapsed_ms = timed_step(trainer, ids, mask, labels, device)
            if index >= 1:
                times_ms.append(elapsed_ms)
            profiler.step()
    return times_ms
