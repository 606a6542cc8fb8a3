"""Serving metrics from request traces (definitions in the README, "Serving metrics").

- TTFT: first output chunk's arrival - send time.
- E2E: end of the response (the stream closed, usage chunk included) - send time.
- TPOT: (E2E - TTFT) / (output tokens - 1), per request with at least two output tokens.
- ITL: every gap between consecutive output chunks, over all requests.
- Throughput: tokens (or requests) of the completed requests over the makespan, first send to
  the last completed response's end. Failed requests count in `failed` and `failed_<kind>`
  (failed_truncated, failed_timeout, failed_connection, failed_http_500, ...; `truncated`, kept
  at 0 too, is failed_truncated for the tables) and in no latency or throughput.
- Whole-run throughput (`_all`): the same completed tokens (or requests) over the whole run,
  first send to the last request's end, failed ones included (how `vllm bench serve` divides).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .trace import TRUNCATED, RequestTrace

PERCENTILES = (50, 90, 99)
LATENCIES = ("ttft", "tpot", "itl", "e2e")


def request_latencies(trace: RequestTrace) -> dict[str, list[float]]:
    """Seconds; TPOT is missing for a one-token response, where it is undefined."""
    first = trace.chunks[0][0]
    ttft = first - trace.sent
    e2e = trace.finished - trace.sent
    arrivals = [t for t, _ in trace.chunks]
    values = {"ttft": [ttft], "e2e": [e2e], "itl": list(np.diff(arrivals)), "tpot": []}
    if trace.output_tokens > 1:
        values["tpot"] = [(e2e - ttft) / (trace.output_tokens - 1)]
    return values


def summarize(values: list[float], prefix: str) -> dict[str, float]:
    """Mean and percentiles in milliseconds; empty input gives no keys, not zeros."""
    if not values:
        return {}
    ms = np.asarray(values) * 1000.0
    summary = {f"{prefix}_mean_ms": float(ms.mean())}
    for q in PERCENTILES:
        name = "median" if q == 50 else f"p{q}"
        summary[f"{prefix}_{name}_ms"] = float(np.percentile(ms, q))
    return summary


def failure_counts(traces: list[RequestTrace]) -> Counter:
    """Failed requests per kind: "truncated", "timeout", "connection", "http 500", ..."""
    return Counter(t.failure_kind for t in traces if not t.ok)


def metric_name(kind: str) -> str:
    return "failed_" + kind.replace(" ", "_")  # "http 500" -> failed_http_500


def whole_run_throughput(traces: list[RequestTrace], ok: list[RequestTrace]) -> dict:
    """Completed work over first send to the last end of any request, failed ones included."""
    ends = [t.finished for t in traces if t.finished is not None]  # old files: failures had none
    if not ends:
        return {}
    makespan = max(ends) - min(t.sent for t in traces)
    if not ok:
        return {"makespan_all_s": makespan}  # no throughput without a completed request
    output_tokens = sum(t.output_tokens for t in ok)
    prompt_tokens = sum(t.prompt_tokens for t in ok)
    return {
        "makespan_all_s": makespan,
        "output_tokens_per_s_all": output_tokens / makespan,
        "total_tokens_per_s_all": (output_tokens + prompt_tokens) / makespan,
        "requests_per_s_all": len(ok) / makespan,
    }


def serving_metrics(traces: list[RequestTrace]) -> dict:
    ok = [t for t in traces if t.ok]
    failures = failure_counts(traces)
    metrics = {
        "requests": len(traces),
        "completed": len(ok),
        "failed": len(traces) - len(ok),
        "truncated": failures[TRUNCATED],
        **{metric_name(kind): count for kind, count in failures.items()},
        # responses whose output length differs from max_tokens: reported, never assumed away
        "token_count_mismatches": sum(t.output_tokens != t.expected_tokens for t in ok),
    }
    metrics.update(whole_run_throughput(traces, ok))
    if not ok:
        return metrics
    makespan = max(t.finished for t in ok) - min(t.sent for t in traces)
    output_tokens = sum(t.output_tokens for t in ok)
    prompt_tokens = sum(t.prompt_tokens for t in ok)
    metrics.update(
        {
            "makespan_s": makespan,
            "output_tokens": output_tokens,
            "prompt_tokens": prompt_tokens,
            "output_tokens_per_s": output_tokens / makespan,
            "total_tokens_per_s": (output_tokens + prompt_tokens) / makespan,
            "requests_per_s": len(ok) / makespan,
            "chunks_per_request_mean": float(np.mean([len(t.chunks) for t in ok])),
        }
    )
    pooled: dict[str, list[float]] = {name: [] for name in LATENCIES}
    for trace in ok:
        for name, values in request_latencies(trace).items():
            pooled[name].extend(values)
    for name in LATENCIES:
        metrics.update(summarize(pooled[name], name))
    return metrics


def request_rows(traces: list[RequestTrace]) -> list[dict]:
    """Per completed request: TTFT, TPOT and E2E in ms (for the latency distributions)."""
    rows = []
    for trace in traces:
        if not trace.ok:
            continue
        values = request_latencies(trace)
        row = {"request": trace.index, "output_tokens": trace.output_tokens}
        for name in ("ttft", "tpot", "e2e"):
            row[name] = values[name][0] * 1000.0 if values[name] else None
        rows.append(row)
    return rows
