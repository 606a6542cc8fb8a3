"""Forward / backward / optimizer split of profiled steps (Table V, Fig. 5), from a chrome trace.

For each phase, summed over the profiled steps and divided by their number:
- wall: on a CPU, the phase's range. On a GPU, the phase's window on the device: it opens when
  the phase's CPU range starts, or when the previous phase's window closes if that is later (the
  device still runs what the previous phase queued), and closes when the last activity the phase
  launched ends, or with its CPU range if that is later. The windows of one step do not overlap.
- busy: the time within it when at least one device activity runs (GPU kernels, copies and
  memsets; on a CPU, the profiler's CPU operators: a CPU has no kernels of its own);
- idle share: 1 - busy / wall.
A GPU activity belongs to the phase whose CPU range holds its launch (same correlation id), on
any thread: the backward pass launches from autograd's own thread. The profiler's GPU-side copies
of the ranges (gpu_user_annotation) are not used: they cover only the kernels launched directly
in a range on its own thread, not those of nested ranges or other threads, so a forward range
holding module ranges comes out a fraction of a millisecond long.
HolisticTraceAnalysis measures idle time per trace and per kernel stream, not per phase of a
step, hence this module; benchmarks/hta_crosscheck.py compares the two on a GPU trace.
"""

from __future__ import annotations

import bisect
import gzip
import json
from pathlib import Path

PHASES = ("step", "forward", "backward", "optimizer")
PHASE_PREFIX = "phase."  # the training loop's record_function ranges; kept free of torch
GPU_ACTIVITY = ("kernel", "gpu_memcpy", "gpu_memset")
LAUNCH_CATS = ("cuda_runtime", "cuda_driver")
STEP_PREFIX = "ProfilerStep#"


def load_trace(path: Path) -> list[dict]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return json.load(f)["traceEvents"]


def complete_events(events: list[dict]) -> list[dict]:
    """The events with a duration (the profiler's "X" events)."""
    return [e for e in events if e.get("ph") == "X" and "dur" in e]


def profiled_steps(complete: list[dict]) -> int:
    """Profiled steps in a trace: its CPU-side ProfilerStep ranges (on a GPU each step is also a
    gpu_user_annotation, which must not count twice)."""
    return max(
        1,
        sum(
            1
            for e in complete
            if e.get("cat") == "user_annotation" and e.get("name", "").startswith(STEP_PREFIX)
        ),
    )


def on_gpu(complete: list[dict]) -> bool:
    """Whether the trace has device activity (else its activity is the CPU operators')."""
    return any(e.get("cat") in GPU_ACTIVITY for e in complete)


def launch_times(complete: list[dict]) -> dict[int, float]:
    """Correlation id -> when the CPU launched that GPU activity (runtime or driver call)."""
    return {
        e["args"]["correlation"]: e["ts"]
        for e in complete
        if e.get("cat") in LAUNCH_CATS and "correlation" in e.get("args", {})
    }


def cpu_self_times(complete: list[dict]) -> dict[int, float]:
    """id(event) -> the operator's self time in us (its time minus its child operators'), for
    every CPU operator; nested operators on one thread are properly nested in time."""
    own: dict[int, float] = {}
    stacks: dict[object, list[dict]] = {}
    ops = sorted(
        (e for e in complete if e.get("cat") == "cpu_op"), key=lambda e: (e["ts"], -e["dur"])
    )
    for event in ops:
        stack = stacks.setdefault(event.get("tid"), [])
        while stack and stack[-1]["ts"] + stack[-1]["dur"] <= event["ts"]:
            stack.pop()
        if stack:
            own[id(stack[-1])] -= event["dur"]
        own[id(event)] = event["dur"]
        stack.append(event)
    return {key: max(0.0, value) for key, value in own.items()}


def merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping intervals joined: time with at least one activity counts once."""
    out: list[list[float]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def covered(union: list[tuple[float, float]], start: float, end: float) -> float:
    """Time within [start, end) covered by `union` (sorted, disjoint: from merged())."""
    total = 0.0
    # the first interval that may reach past start: its predecessor ends before its own start
    index = max(0, bisect.bisect_right(union, (start, float("inf"))) - 1)
    for s, e in union[index:]:
        if s >= end:
            break
        total += max(0.0, min(e, end) - max(s, start))
    return total


def phase_name(event: dict) -> str | None:
    name = event.get("name", "")
    if name.startswith(STEP_PREFIX):
        return "step"
    if name.startswith(PHASE_PREFIX):
        return name[len(PHASE_PREFIX) :]
    return None


def phase_split(events: list[dict]) -> dict:
    """Per phase: wall_ms, busy_ms (per profiled step) and idle_share; plus what counted as
    activity ("gpu kernels" or "cpu operators")."""
    complete = complete_events(events)
    gpu = on_gpu(complete)
    activity = [e for e in complete if e.get("cat") in (GPU_ACTIVITY if gpu else ("cpu_op",))]
    union = merged([(e["ts"], e["ts"] + e["dur"]) for e in activity])
    ranges: dict[str, list[tuple[float, float]]] = {}
    for event in complete:
        name = phase_name(event)
        if name and event.get("cat") == "user_annotation":
            ranges.setdefault(name, []).append((event["ts"], event["ts"] + event["dur"]))
    windows = dict(ranges)
    if gpu:
        windows.update(device_windows(ranges, complete, activity))
    steps = max(1, len(windows.get("step", [])))
    result = {"activity": "gpu kernels" if gpu else "cpu operators", "steps": steps}
    for name in PHASES:
        spans = windows.get(name, [])
        if not spans:
            continue
        wall = sum(e - s for s, e in spans)
        busy = sum(covered(union, s, e) for s, e in spans)
        result[f"{name}_wall_ms"] = wall / steps / 1000.0
        result[f"{name}_busy_ms"] = busy / steps / 1000.0
        result[f"{name}_idle_share"] = 1.0 - busy / wall if wall else None
    return result


def device_windows(
    ranges: dict[str, list[tuple[float, float]]], complete: list[dict], activity: list[dict]
) -> dict[str, list[tuple[float, float]]]:
    """Each phase range's window on the GPU (see the module's docstring)."""
    launch = launch_times(complete)
    spans = sorted(
        (s, e, name) for name, found in ranges.items() if name != "step" for s, e in found
    )
    starts = [s for s, _, _ in spans]
    last_end = [float("-inf")] * len(spans)
    for event in activity:
        at = launch.get(event.get("args", {}).get("correlation"), event["ts"])
        i = bisect.bisect_right(starts, at) - 1
        if i >= 0 and at < spans[i][1]:
            last_end[i] = max(last_end[i], event["ts"] + event["dur"])
    windows: dict[str, list[tuple[float, float]]] = {}
    previous_end = float("-inf")
    for (start, end, name), device_end in zip(spans, last_end, strict=True):
        opened = max(start, previous_end)
        previous_end = max(end, device_end, opened)
        windows.setdefault(name, []).append((opened, previous_end))
    return windows
