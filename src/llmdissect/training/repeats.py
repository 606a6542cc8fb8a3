"""Repeats of a cell's measurement, each in its own probe process: the record keeps the median
of every metric and a 95% interval for the headline ones, so a difference inside the noise
shows as one."""

from __future__ import annotations

import math
import statistics

# metrics whose spread the tables and the claims read
INTERVAL_METRICS = (
    "tokens_per_s",
    "step_time_ms_median",
    "mfu",
    "joules_per_token",
    "peak_mem_allocated_gb",
    "peak_rss_gb",
    "module_attention_forward_ms",
    "module_attention_backward_ms",
    "step_idle_share",
)
# two-sided 95% quantiles of Student's t by degrees of freedom (1 to 10); beyond, about normal
T_95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def t_quantile(degrees: int) -> float:
    return T_95[degrees - 1] if degrees <= len(T_95) else 1.96 + 2.4 / degrees


def interval(values: list[float]) -> tuple[float, float]:
    """95% confidence interval of the mean of independent repeats (Student's t)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean
    half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def repeating(probe, repeats: int):
    """`probe` that runs the final measurement ("measure") `repeats` times when the first run is
    ok, and returns one outcome of them all; search probes run once."""
    if repeats <= 1:
        return probe

    def measure(spec, name: str, keep_steps: bool) -> dict:
        first = probe(spec, name, keep_steps)
        if name != "measure" or first["status"] != "ok":
            return first
        others = [probe(spec, f"measure_r{i}", False) for i in range(2, repeats + 1)]
        return combine([first, *others])

    return measure


def combine(outcomes: list[dict]) -> dict:
    """The first outcome (its steps, details, environment) with the median of every numeric
    metric over the ok repeats, intervals for INTERVAL_METRICS and each repeat's values."""
    ok = [o for o in outcomes if o["status"] == "ok"]
    combined = dict(ok[0], metrics=dict(ok[0]["metrics"]))
    metrics = combined["metrics"]
    values = {}
    for name, first in ok[0]["metrics"].items():
        series = [o["metrics"].get(name) for o in ok]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in series):
            continue
        metrics[name] = statistics.median(series) if isinstance(first, float) else first
        if name in INTERVAL_METRICS:
            values[name] = series
            if len(series) > 1:  # one run left: no interval to give
                metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = interval(series)
    metrics["repeats"] = len(ok)
    combined["repeat_statuses"] = [o["status"] for o in outcomes]
    metrics["repeat_values"] = values
    failed = [o for o in outcomes if o["status"] != "ok"]
    if failed:
        reasons = "; ".join(f"{o['status']}: {o.get('reason')}" for o in failed)
        combined["reason"] = f"{len(failed)} of {len(outcomes)} repeats failed ({reasons})"
    return combined
