"""Measure one serving cell: start the engine, warm it up, fire the workload, stop the engine,
write the per-request traces and the record. An engine that runs out of memory is a result."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from ..cells import ServingCell
from ..data import word
from ..environment import collect_manifest
from ..models import ModelShape, param_count
from ..records import make_record, now_iso, write_json_atomic
from ..training.memory import OOM_MARKERS
from .engines import EngineServer, engine_launch, engine_version
from .loadgen import Arrivals, run_load
from .metrics import serving_metrics
from .trace import write_traces

BYTES_PER_WEIGHT = {"bfloat16": 2, "float16": 2, "float32": 4}
# how engines say that weights and KV cache do not fit, beside the allocator's own messages
ENGINE_OOM_MARKERS = (
    "no available memory for the cache blocks",
    "larger than the available kv cache memory",
    "less than desired gpu memory utilization",
)
WARMUP_REQUESTS = 2


def read_prompts(path: Path) -> list[list[int]]:
    with open(path) as f:
        return [json.loads(line)["prompt_token_ids"] for line in f if line.strip()]


def weights_problem(
    shape: ModelShape, template: dict, device_memory_gb: float | None
) -> str | None:
    """Why the weights alone cannot fit the engine's share of its GPUs, or None."""
    if device_memory_gb is None or template["kind"] == "external":
        return None
    weights_gb = param_count(shape) * BYTES_PER_WEIGHT[template["dtype"]] / 1e9
    tp = template["tensor_parallel_size"]
    budget_gb = device_memory_gb * tp * template["memory_fraction"]
    if weights_gb <= budget_gb:
        return None
    return (
        f"{template['dtype']} weights need {weights_gb:.0f} GB; {tp} GPU(s) x "
        f"{device_memory_gb:.0f} GB x memory fraction {template['memory_fraction']} "
        f"= {budget_gb:.0f} GB"
    )


def failure_status(text: str) -> str:
    lowered = text.lower()
    markers = (*OOM_MARKERS, *ENGINE_OOM_MARKERS)
    return "oom" if any(marker in lowered for marker in markers) else "error"


def run_serving_cell(
    cell: ServingCell,
    shape: ModelShape,
    template: dict,
    workload: dict,
    model_dir: Path,
    prompts_path: Path,
    record_path: Path,
    trace_path: Path,
    server_log: Path,
    device_memory_gb: float | None,
    log=print,
) -> dict:
    started_at, started = now_iso(), time.monotonic()
    prompts = read_prompts(prompts_path)
    max_tokens = workload["max_new_tokens"]
    mode = workload["arrivals"]
    arrivals = Arrivals(
        mode,
        workload.get("rate") if mode == "poisson" else None,
        workload.get("concurrency") if mode == "concurrency" else None,
        workload["seed"],
    )
    launch = engine_launch(template, cell.model, model_dir, len(prompts[0]) + max_tokens)
    server = EngineServer(launch, server_log, template["startup_timeout_s"])
    settings = {
        "engine": dict(template),
        "command": launch.command,
        "endpoint": launch.endpoint.__dict__,
        "workload": dict(workload),
        "prompts": len(prompts),
        "prompt_len": len(prompts[0]),
        "model_shape": shape.as_dict(),
        "engine_version": engine_version(launch),
    }
    status, reason, metrics, traces = "ok", None, {}, []
    problem = weights_problem(shape, template, device_memory_gb)
    if problem:
        status, reason = "infeasible", problem
    else:
        try:
            with server:
                log(f"{cell.key}: engine healthy after {server.startup_s:.1f} s")
                warm = run_load(launch.endpoint, prompts[:WARMUP_REQUESTS], 4, Arrivals(), word)
                asyncio.run(warm)
                traces = asyncio.run(
                    run_load(
                        launch.endpoint, prompts, max_tokens, arrivals, word,
                        timeout_s=workload["request_timeout_s"], progress=progress_printer(log),
                    )
                )  # fmt: skip
                metrics = {"startup_s": server.startup_s, **serving_metrics(traces)}
        except (RuntimeError, TimeoutError, OSError) as error:
            # the root cause (a CUDA OOM in a worker) can sit far above the log's last lines
            status = failure_status(f"{error}\n{server.log_text()}")
            reason = f"{type(error).__name__}: {error}\n(server log: {server_log})"
    if status == "ok" and metrics.get("completed", 0) == 0:
        first = next((t.error for t in traces if t.error), "no request completed")
        status = failure_status(f"{first}\n{server.log_text()}")
        reason = f"every request failed; the first: {first} (server log: {server_log})"
    write_traces(trace_path, traces)
    record = make_record(
        key=cell.key,
        cell=cell.as_dict(),
        status=status,
        reason=reason,
        metrics=metrics,
        settings=settings,
        environment=collect_manifest(),
        started_at=started_at,
        started_monotonic=started,
    )
    write_json_atomic(record_path, record)
    summary = f"{metrics.get('output_tokens_per_s', 0):.1f} output tokens/s" if metrics else ""
    log(f"{cell.key}: {status} {reason or summary}")
    return record


def progress_printer(log):
    shown = set()

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth not in shown:
            shown.add(tenth)
            log(f"  {done}/{total} requests done")

    return progress
