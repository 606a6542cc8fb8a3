"""GPU idle time of one profiled trace: HolisticTraceAnalysis against this pipeline's own code.

HolisticTraceAnalysis (HTA) computes idle time per trace (its temporal breakdown: the span from
the first to the last GPU activity, less the time when at least one runs), over every profiled
step but the last. The pipeline needs idle time per phase of each step, which HTA does not
give, so it has its own interval code (llmdissect.profiling.phases). This script runs both on
the same trace and over the same steps:
- HTA's temporal breakdown and its idle-time breakdown (host wait / kernel wait);
- ours, with exact timestamps, and with HTA's rounding (it moves each event's start up and its
  end down to whole microseconds, so that events with nanosecond times do not overlap);
- ours per step (the pipeline's step idle share).

HTA is not a dependency of the pipeline (it pulls in Jupyter), and the trace code
needs no torch: run this in a venv of its own:
    python3 -m venv .venv-hta && .venv-hta/bin/pip install HolisticTraceAnalysis==0.5.0
    PYTHONPATH=src .venv-hta/bin/python benchmarks/hta_crosscheck.py TRACE.json.gz --out RESULT.json
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from pathlib import Path

from llmdissect.profiling.phases import (
    GPU_ACTIVITY,
    STEP_PREFIX,
    complete_events,
    covered,
    launch_times,
    load_trace,
    merged,
    phase_split,
)


def hta_figures(trace: Path) -> dict:
    from hta.trace_analysis import TraceAnalysis

    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(trace, Path(folder) / "rank0.json.gz")  # HTA reads a folder of traces
        analysis = TraceAnalysis(trace_dir=folder)
        temporal = analysis.get_temporal_breakdown(visualize=False).iloc[0]
        waits = analysis.get_idle_time_breakdown(visualize=False)[0]
        kernels = analysis.t.get_trace(0)
        activities = int(kernels["stream"].ne(-1).sum())
    return {
        "activities": activities,
        "span_us": float(temporal["kernel_time(us)"]),
        "idle_us": float(temporal["idle_time(us)"]),
        "idle_share": float(temporal["idle_time(us)"] / temporal["kernel_time(us)"]),
        "idle_by_cause_us": {
            row["idle_category"]: float(row["idle_time"]) for _, row in waits.iterrows()
        },
    }


def idle_over(intervals: list[tuple[float, float]]) -> dict:
    start, end = min(s for s, _ in intervals), max(e for _, e in intervals)
    busy = covered(merged(intervals), start, end)
    return {
        "span_us": end - start,
        "idle_us": end - start - busy,
        "idle_share": 1 - busy / (end - start),
    }


def our_figures(trace: Path) -> dict:
    events = load_trace(trace)
    complete = complete_events(events)
    steps = sorted(
        e["ts"]
        for e in complete
        if e.get("cat") == "user_annotation" and e["name"].startswith(STEP_PREFIX)
    )
    launch = launch_times(complete)
    # the steps HTA keeps: all but the last; an activity belongs to the step that launched it
    kept = [
        e
        for e in complete
        if e.get("cat") in GPU_ACTIVITY
        and launch.get(e.get("args", {}).get("correlation"), e["ts"]) < steps[-1]
    ]
    exact = [(e["ts"], e["ts"] + e["dur"]) for e in kept]
    rounded = [(math.ceil(s), max(math.ceil(s), math.floor(e))) for s, e in exact]
    split = phase_split(events)
    return {
        "activities": len(kept),
        "exact": idle_over(exact),
        "hta_rounding": idle_over(rounded),
        "per_step_idle_share": split["step_idle_share"],
        "steps": split["steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {
        "trace": args.trace.name,
        "hta": hta_figures(args.trace),
        "ours": our_figures(args.trace),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
