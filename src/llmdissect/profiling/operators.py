"""Operator level: activity time by category, the top operators, and communication overlap.

The activity is what the phase split counts as busy: GPU kernels, copies and memsets, or on a
CPU each operator's self time. Categories come from name patterns, checked in order (the first
match wins), so a fused attention kernel is "attention" even though it runs GEMMs inside. The
patterns cover cuBLAS/CUTLASS/nvjet GEMMs, flash/memory-efficient attention, PyTorch's own
elementwise and reduction kernels, NCCL and gloo collectives, and the aten operators a CPU
trace names; tests run them over real CPU traces.
"""

from __future__ import annotations

import re

from .phases import (
    GPU_ACTIVITY,
    complete_events,
    covered,
    cpu_self_times,
    merged,
    on_gpu,
    profiled_steps,
)

CATEGORY_PATTERNS = (
    # autograd's own nodes and tensor views: bookkeeping, whatever their names contain
    (
        "other",
        r"AccumulateGrad|Backward\d*$|BackwardFunction|aten::(view|_unsafe_view|reshape|"
        r"t|transpose|permute|expand|slice|select|as_strided|unsqueeze|squeeze|detach|alias|"
        r"empty\w*|resize_|split|chunk|unbind|narrow)$",
    ),
    (
        "communication",
        r"nccl|gloo|all_?reduce|all_?gather|reduce_?scatter|broadcast|c10d::|record_param_comms"
        r"|alltoall|all_to_all",
    ),
    (
        "memory",  # copies, and gathers/scatters (an embedding lookup and its backward)
        r"memcpy|memset|copy|aten::to$|aten::_to_copy|aten::contiguous|aten::cat$|catarray"
        r"|embedding|index_select|gather|scatter",
    ),
    ("attention", r"flash|fmha|attention|sdpa|scaled_dot_product|softmax"),
    (
        "gemm",
        r"gemm|nvjet|cutlass|cublas|xmma|matmul|aten::(mm|bmm|addmm|baddbmm|addbmm|linear)$"
        r"|_int_mm|kgemm|gemv|dot_product|aten::dot$",
    ),
    ("normalization", r"norm|rsqrt"),
    ("reduction", r"reduce|aten::(sum|mean|max|min|amax|argmax|nll_loss\w*|norm)$|cross_entropy"),
    (
        "elementwise",
        r"elementwise|vectorized|unrolled|foreach|multi_tensor|adam|aten::\w+$|triton|silu|gelu"
        r"|fill|where|neg|exp|sigmoid|cos|sin|pow|mul|add|div|sub|quantiz",  # 4-bit (de)quantize
    ),
)
CATEGORIES = (
    "gemm",
    "attention",
    "elementwise",
    "normalization",
    "reduction",
    "memory",
    "communication",
    "other",
)
_COMPILED = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in CATEGORY_PATTERNS)
TOP_COUNT = 10
# Operators that only hold others: their self time is dispatch overhead, not work.
WRAPPERS = ("autograd::engine::evaluate_function", "Optimizer.", "ProfilerStep#")


def operator_category(name: str) -> str:
    for category, pattern in _COMPILED:
        if pattern.search(name):
            return category
    return "other"


def _activities(complete: list[dict]) -> list[tuple[str, float, float, object]]:
    """(name, start, duration, lane) of each unit of activity; on a CPU each operator's self
    time, placed at its start (a lane is a GPU stream or a CPU thread)."""
    if on_gpu(complete):
        return [
            (e.get("name", ""), e["ts"], e["dur"], e.get("tid"))
            for e in complete
            if e.get("cat") in GPU_ACTIVITY
        ]
    own = cpu_self_times(complete)
    return [
        (e.get("name", ""), e["ts"], own[id(e)], e.get("tid"))
        for e in complete
        if e.get("cat") == "cpu_op"
    ]


def operator_times(events: list[dict]) -> dict:
    """Per category: ms per profiled step; the top operators by time; communication time and
    the share of it that overlaps computation on another lane."""
    complete = complete_events(events)
    steps = profiled_steps(complete)
    per_category = dict.fromkeys(CATEGORIES, 0.0)
    per_name: dict[str, list] = {}
    comm, compute = [], []
    for name, start, duration, lane in _activities(complete):
        if name.startswith(WRAPPERS) or duration <= 0:
            continue
        category = operator_category(name)
        per_category[category] += duration
        entry = per_name.setdefault(name, [category, 0.0, 0])
        entry[1] += duration
        entry[2] += 1
        span = (start, start + duration, lane)
        (comm if category == "communication" else compute).append(span)
    total = sum(per_category.values())
    result = {f"op_{name}_ms": value / steps / 1000.0 for name, value in per_category.items()}
    result["op_total_ms"] = total / steps / 1000.0
    top = sorted(per_name.items(), key=lambda item: -item[1][1])[:TOP_COUNT]
    result["top_operators"] = [
        {
            "name": name,
            "category": category,
            "ms_per_step": value / steps / 1000.0,
            "calls_per_step": calls / steps,
            "share": value / total if total else None,
        }
        for name, (category, value, calls) in top
    ]
    result.update(_overlap(comm, compute, steps))
    return result


def _overlap(comm: list, compute: list, steps: int) -> dict:
    """Communication time, and the share of it during which computation runs elsewhere (on
    another stream or thread: what the same lane runs cannot overlap it)."""
    comm_total = sum(end - start for start, end, _ in comm)
    if not comm_total:
        return {"comm_ms": 0.0, "comm_overlap_share": None}
    overlapped = 0.0
    for lane in {lane for _, _, lane in comm}:
        others = merged([(s, e) for s, e, other in compute if other != lane])
        overlapped += sum(covered(others, s, e) for s, e, other in comm if other == lane)
    return {
        "comm_ms": comm_total / steps / 1000.0,
        "comm_overlap_share": overlapped / comm_total,
    }
