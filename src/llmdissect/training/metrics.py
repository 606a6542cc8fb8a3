"""Training metrics from the raw step records: times, throughput, utilisation."""

from __future__ import annotations

import statistics

from ..models import ModelShape, training_flops_per_token
from .loop import StepRecord


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def step_metrics(
    steps: list[StepRecord],
    shape: ModelShape,
    seq_len: int,
    batch_size: int,
    recompute: bool,
    peak_tflops: float | None,
    world_size: int = 1,
    data_parallel_size: int = 1,
    matmul_params: int | None = None,
    trainable_matmul_params: int | None = None,
) -> dict:
    measured = [s for s in steps if not s.warmup]
    times = [s.time_ms for s in measured]
    seconds = sum(times) / 1000
    tokens = sum(s.tokens for s in measured)
    padded = sum(s.padded_tokens for s in measured)
    tokens_per_s = tokens / seconds
    counts = dict(matmul_params=matmul_params, trainable_matmul_params=trainable_matmul_params)
    model_flops = training_flops_per_token(shape, seq_len, **counts) * tokens_per_s
    hardware_flops = training_flops_per_token(shape, seq_len, recompute, **counts) * tokens_per_s
    peak_total = peak_tflops * 1e12 * world_size if peak_tflops else None
    return {
        "measured_steps": len(measured),
        "step_time_ms_median": round(statistics.median(times), 3),
        "step_time_ms_mean": round(statistics.fmean(times), 3),
        "step_time_ms_std": round(statistics.stdev(times), 3) if len(times) > 1 else 0.0,
        "step_time_ms_p10": round(percentile(times, 10), 3),
        "step_time_ms_p90": round(percentile(times, 90), 3),
        "tokens_per_s": round(tokens_per_s, 3),
        "tokens_per_s_padded": round(padded / seconds, 3),
        "samples_per_s": round(batch_size * data_parallel_size * len(measured) / seconds, 3),
        "model_tflops_per_s": round(model_flops / 1e12, 6),
        "mfu": round(model_flops / peak_total, 4) if peak_total else None,
        "hfu": round(hardware_flops / peak_total, 4) if peak_total else None,
        "loss_first": round(steps[0].loss, 4),
        "loss_last": round(steps[-1].loss, 4),
        "first_step_ms": round(steps[0].time_ms, 3),
        **compile_metrics(steps, statistics.median(times)),
    }


def compile_metrics(steps: list[StepRecord], median_ms: float) -> dict:
    """For a compiled model: the compile time (what the warm-up steps took beyond a measured
    step), the graphs made, and how many of them were made during the measured steps (each a
    recompile that the measured time includes; zero when the warm-up was long enough)."""
    if all(s.graphs is None for s in steps):
        return {}
    warmup = [s for s in steps if s.warmup]
    extra_ms = sum(max(0.0, s.time_ms - median_ms) for s in warmup)
    before = (warmup[-1].graphs or 0) if warmup else 0
    return {
        "compile_s": round(extra_ms / 1000, 3),
        "compiled_graphs": steps[-1].graphs or 0,
        "graphs_compiled_in_measured_steps": (steps[-1].graphs or 0) - before,
    }
