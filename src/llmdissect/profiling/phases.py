"""Forward / backward / optimizer split of profiled steps (Table V, Fig. 5), from a chrome trace.

For each phase, summed over the profiled steps and divided by their number:
- wall: the phase's range (the GPU-side range of its kernels on a GPU, the CPU range otherwise);
- busy: the time within it when at least one device activity runs (GPU kernels, copies and
  memsets; on a CPU, the profiler's CPU operators: a CPU has no kernels of its own);
- idle share: 1 - busy / wall.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from ..training.frameworks.base import PHASE_PREFIX

PHASES = ("step", "forward", "backward", "optimizer")
GPU_ACTIVITY = ("kernel", "gpu_memcpy", "gpu_memset")
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
    return sum(max(0.0, min(e, end) - max(s, start)) for s, e in union)


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
    on_gpu = any(e.get("cat") in GPU_ACTIVITY for e in complete)
    activity_cats = GPU_ACTIVITY if on_gpu else ("cpu_op",)
    window_cat = "gpu_user_annotation" if on_gpu else "user_annotation"
    union = merged(
        [(e["ts"], e["ts"] + e["dur"]) for e in complete if e.get("cat") in activity_cats]
    )
    windows: dict[str, list[tuple[float, float]]] = {}
    for event in complete:
        name = phase_name(event)
        if name and event.get("cat") == window_cat:
            windows.setdefault(name, []).append((event["ts"], event["ts"] + event["dur"]))
    if on_gpu and "step" not in windows:  # step ranges may exist on the CPU side only
        windows["step"] = [
            (e["ts"], e["ts"] + e["dur"])
            for e in complete
            if phase_name(e) == "step" and e.get("cat") == "user_annotation"
        ]
    steps = max(1, len(windows.get("step", [])))
    result = {"activity": "gpu kernels" if on_gpu else "cpu operators", "steps": steps}
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
