"""Module-level time (Tables VI, VII, VIII) from a chrome trace with `module.<role>` ranges.

Every unit of device activity is placed in the modules that caused it, using only the
profiler's own links, so it holds on any GPU and any library version:
- a GPU kernel (or copy, memset) belongs to the CPU call that launched it (same correlation id);
  on a CPU the activity is each operator's self time (its time minus its child operators');
- a call made inside `module.*` ranges belongs to those modules: the forward pass, or, inside the
  backward pass, a recomputed forward (activation checkpointing);
- a call inside an autograd backward function belongs to the modules of the forward operator
  that created it (the function's sequence number equals that operator's).
A parameter's gradient accumulation, with what a framework hooks onto it (ZeRO's bucketed
reduction) or does to the gradients in the backward phase outside autograd (DeepSpeed's bf16
optimizer flattening them into its fp32 buffers), is a row of its own: parameter_gradients.
What lands in no module is "other"; its share of the attributed phases' activity is the
coverage figure. Recomputed operators outside any child module (the residual adds of a
recomputed decoder layer) count toward the backward function that needed them.
"""

from __future__ import annotations

from .module_marks import MODULE_PREFIX, ROLES
from .phases import (
    GPU_ACTIVITY,
    LAUNCH_CATS,
    PHASE_PREFIX,
    complete_events,
    cpu_self_times,
    on_gpu,
    profiled_steps,
)

KINDS = ("forward", "backward", "recompute")
BACKWARD_FUNCTION = "autograd::engine::evaluate_function"
FORWARD_PHASE, BACKWARD_PHASE = f"{PHASE_PREFIX}forward", f"{PHASE_PREFIX}backward"
ACCUMULATE_GRAD = "AccumulateGrad"  # a parameter's gradient lands; no sequence number links it


def _windows(events: list[dict], name: str) -> list[tuple[float, float]]:
    return sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("cat") == "user_annotation" and e.get("name") == name
    )


def _inside(windows: list[tuple[float, float]], ts: float) -> bool:
    return any(start <= ts < end for start, end in windows)


class _Attribution:
    """Walks the CPU-side events in time order, one call stack per thread."""

    def __init__(self):
        self.forward_chain: dict[int, tuple[str, ...]] = {}  # sequence number -> modules
        self.launch_context: dict[int, tuple[str, tuple[str, ...]]] = {}  # correlation -> ...
        self.launch_ts: dict[int, float] = {}
        self.cpu_calls: list[tuple[str, tuple[str, ...], dict]] = []  # kind, chain, operator

    def context(self, stack: list[dict]) -> tuple[str, tuple[str, ...]] | None:
        """(kind, module chain) of a call with this stack of enclosing events; None when
        neither a module range nor a backward function encloses it."""
        modules: list[str] = []
        for event in reversed(stack):
            name = event["name"]
            if name.startswith(MODULE_PREFIX):
                modules.insert(0, name[len(MODULE_PREFIX) :])
            elif name == BACKWARD_PHASE and not modules:  # outside autograd: framework's work
                return "backward", ("parameter_gradients",)
            elif name.startswith(BACKWARD_FUNCTION):
                if modules:
                    return "recompute", tuple(modules)
                if name.endswith(ACCUMULATE_GRAD):
                    return "backward", ("parameter_gradients",)
                chain = self.forward_chain.get(event.get("args", {}).get("Sequence number"))
                return ("backward", chain) if chain else ("backward", ())
        return ("forward", tuple(modules)) if modules else None

    def walk(self, events: list[dict]) -> None:
        stacks: dict[object, list[dict]] = {}
        for event in sorted(events, key=lambda e: (e["ts"], -e["dur"])):
            stack = stacks.setdefault(event.get("tid"), [])
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= event["ts"]:
                stack.pop()
            cat = event.get("cat")
            if cat in LAUNCH_CATS:
                found = self.context(stack)
                correlation = event.get("args", {}).get("correlation")
                if correlation is not None:
                    self.launch_ts[correlation] = event["ts"]
                    if found:
                        self.launch_context[correlation] = found
                continue
            stack.append(event)
            if cat != "cpu_op":
                continue
            found = self.context(stack)
            sequence = event.get("args", {}).get("Sequence number")
            if found and found[0] != "backward" and sequence is not None:
                # the last operator of a number made the node; a reentrant recompute makes
                # nodes too, and runs their backward inside the checkpoint's own
                self.forward_chain[sequence] = found[1]
            kind, chain = found if found else ("", ())
            self.cpu_calls.append((kind, chain, event))

    def activities(self, complete: list[dict], on_gpu: bool):
        """(launch or start time, kind, chain, duration in us) of every unit of activity."""
        if on_gpu:
            for event in complete:
                if event.get("cat") in GPU_ACTIVITY:
                    correlation = event.get("args", {}).get("correlation")
                    kind, chain = self.launch_context.get(correlation, ("", ()))
                    launch = self.launch_ts.get(correlation, event["ts"])
                    yield launch, kind, chain, event["dur"]
        else:
            own = cpu_self_times(complete)
            for kind, chain, event in self.cpu_calls:
                yield event["ts"], kind, chain, own[id(event)]


def module_times(events: list[dict]) -> dict:
    """Per module role and kind (forward, backward, recompute): time per step in ms, inclusive
    of the modules inside it; plus `module_other_share` and `module_activity_ms`."""
    complete = complete_events(events)
    steps = profiled_steps(complete)
    forward, backward = _windows(complete, FORWARD_PHASE), _windows(complete, BACKWARD_PHASE)
    walker = _Attribution()
    walker.walk(
        [
            e
            for e in complete
            if e.get("cat") in ("cpu_op", *LAUNCH_CATS)
            or (
                e.get("cat") == "user_annotation"
                and (e["name"].startswith(MODULE_PREFIX) or e["name"] == BACKWARD_PHASE)
            )
        ]
    )
    totals: dict[tuple[str, str], float] = {}
    attributed_us = other_us = 0.0
    for ts, kind, chain, duration in walker.activities(complete, on_gpu(complete)):
        if not (_inside(forward, ts) or _inside(backward, ts)):
            continue  # the optimizer and what runs between the phases
        attributed_us += duration
        if not chain:
            other_us += duration
            continue
        for role in set(chain):
            totals[(role, kind)] = totals.get((role, kind), 0.0) + duration
    result = {
        "module_activity_ms": attributed_us / steps / 1000.0,
        "module_other_share": other_us / attributed_us if attributed_us else None,
    }
    for role in ROLES:
        for kind in KINDS:
            if (role, kind) in totals:
                result[f"module_{role}_{kind}_ms"] = totals[(role, kind)] / steps / 1000.0
    return result
