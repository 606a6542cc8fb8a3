"""Measure one serving cell: start the engine, warm it up, fire the workload, stop the engine,
write the per-request traces and the record. An engine that runs out of memory is a result."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from ..cells import ServingCell
from ..data import word
from ..energy import EnergyWindow
from ..environment import collect_manifest
from ..models import ModelShape, param_count
from ..oom import OOM_MARKERS
from ..records import make_record, now_iso, write_json_atomic
from .engines import EngineServer, engine_launch, engine_version
from .loadgen import Arrivals, Endpoint, Timeouts, run_load
from .metrics import failure_counts, serving_metrics
from .offline import offline_command, offline_metrics, run_offline
from .trace import RequestTrace, write_traces

BYTES_PER_WEIGHT = {"bfloat16": 2, "float16": 2, "float32": 4}
# how engines say that weights and KV cache do not fit, beside the allocator's own messages
ENGINE_OOM_MARKERS = (
    "no available memory for the cache blocks",
    "larger than the available kv cache memory",
    "less than desired gpu memory utilization",
)
WARMUP_REQUESTS = 2
WARMUP_TOKENS = 4


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


def failure_breakdown(traces: list[RequestTrace]) -> str:
    """Failed requests by kind, most frequent first: "2 truncated, 1 http 500"."""
    return ", ".join(f"{n} {kind}" for kind, n in failure_counts(traces).most_common())


def load_outcome(
    traces: list[RequestTrace], max_failed_share: float, server_log_text: str = ""
) -> tuple[str, str | None]:
    """The record's status and reason once the load ran. Failures are always named: the record
    stays ok while at most `max_failed_share` of the requests failed, is error above it, and is
    error or oom (from the first failure and the server log) when every request failed."""
    failed = [t for t in traces if not t.ok]
    if not failed:
        return "ok", None
    if len(failed) == len(traces):
        first = failed[0].error or failed[0].failure_kind
        status = failure_status(f"{first}\n{server_log_text}")
        return status, f"every request failed ({failure_breakdown(traces)}); the first: {first}"
    summary = f"{len(failed)} of {len(traces)} requests failed: {failure_breakdown(traces)}"
    if len(failed) / len(traces) > max_failed_share:
        return "error", f"{summary}; more than max_failed_share {max_failed_share:g}"
    return "ok", f"{summary}; within max_failed_share {max_failed_share:g}"


def warm_up(endpoint: Endpoint, prompts: list[list[int]], timeouts: Timeouts) -> None:
    """A few short requests before the measured ones, under the workload's timeouts (a hung
    engine must not hold the cell); an engine that completes none of them is not measured."""
    load = run_load(endpoint, prompts[:WARMUP_REQUESTS], WARMUP_TOKENS, Arrivals(), word, timeouts)
    traces = asyncio.run(load)
    if not any(trace.ok for trace in traces):
        raise RuntimeError(f"the warm-up failed: {traces[0].error}")


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
    timeouts = Timeouts(workload["request_timeout_s"], workload["idle_timeout_s"])
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
    # the engine's GPUs (the cell's); on a CPU machine the packages' counters
    device = "cuda" if device_memory_gb else "cpu"
    problem = weights_problem(shape, template, device_memory_gb)
    if problem:
        status, reason = "infeasible", problem
    elif workload["arrivals"] == "offline":
        counts_path = server_log.with_suffix(".counts.json")  # beside the engine log
        command = offline_command(
            template, model_dir, prompts_path, max_tokens, len(prompts[0]) + max_tokens,
            counts_path,
        )  # fmt: skip
        settings["command"] = command
        del settings["endpoint"]
        deadline_s = template["startup_timeout_s"] + workload["request_timeout_s"]
        energy = EnergyWindow(device)
        try:
            counts = run_offline(command, counts_path, launch.env, server_log, deadline_s, energy)
            metrics = offline_metrics(counts)
            metrics.update(
                energy_per_token(energy, counts["output_tokens"], counts["prompt_tokens"])
            )
        except Exception as error:  # a record with its reason, as a served cell's
            status = failure_status(f"{error}")
            reason = f"{type(error).__name__}: {error}\n(engine log: {server_log})"
    else:
        try:
            with server:
                log(f"{cell.key}: engine healthy after {server.startup_s:.1f} s")
                warm_up(launch.endpoint, prompts, timeouts)
                traces, metrics = [], {"startup_s": server.startup_s}
                levels = []
                for level, arrivals, sent in load_levels(workload, prompts):
                    if level is not None:
                        log(f"{cell.key}: level {level:g} ({len(sent)} prompts)")
                    energy = EnergyWindow(device).start()
                    level_traces = asyncio.run(
                        run_load(
                            launch.endpoint, sent, max_tokens, arrivals, word, timeouts,
                            progress=progress_printer(log),
                        )
                    )  # fmt: skip
                    energy.stop()
                    level_metrics = {**serving_metrics(level_traces)}
                    level_metrics.update(serving_energy(energy, level_traces))
                    for trace in level_traces:
                        trace.level = level
                    traces += level_traces
                    levels.append({"level": level, **level_metrics})
                if "sweep" in workload:
                    metrics["levels"] = levels
                else:
                    metrics.update(levels[0])
                    del metrics["level"]
        except Exception as error:  # whatever failed, the cell ends as a record with its reason
            # the root cause (a CUDA OOM in a worker) can sit far above the log's last lines
            status = failure_status(f"{error}\n{server.log_text()}")
            reason = f"{type(error).__name__}: {error}\n(server log: {server_log})"
    if status == "ok":  # the load ran: failed requests decide the status and are named
        status, reason = load_outcome(traces, workload["max_failed_share"], server.log_text())
        if status != "ok":
            reason += f" (server log: {server_log})"
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
    summary = "; ".join(level_summary(part) for part in metrics.get("levels") or [metrics])
    log(f"{cell.key}: {status} " + "; ".join(part for part in (summary, reason) if part))
    return record


def level_summary(metrics: dict) -> str:
    if "output_tokens_per_s" not in metrics:
        return ""
    level = metrics.get("level")
    prefix = "" if level is None else f"level {level:g}: "
    return f"{prefix}{metrics['output_tokens_per_s']:.1f} output tokens/s"


def load_levels(workload: dict, prompts: list[list[int]]):
    """(level, arrivals, prompts) for each load the workload sends: one (level None) for a plain
    workload, one per sweep level, each with `prompts_per_level` prompts."""
    mode, seed = workload["arrivals"], workload["seed"]
    if "sweep" not in workload:
        rate = workload.get("rate") if mode == "poisson" else None
        concurrency = workload.get("concurrency") if mode == "concurrency" else None
        yield None, Arrivals(mode, rate, concurrency, seed), prompts
        return
    sent = prompts[: workload.get("prompts_per_level") or len(prompts)]
    for level in workload["sweep"]:
        if mode == "poisson":
            yield level, Arrivals(mode, rate=level, seed=seed), sent
        else:
            yield level, Arrivals(mode, concurrency=int(level), seed=seed), sent


def serving_energy(energy: EnergyWindow, traces: list[RequestTrace]) -> dict:
    """Energy over the load (first send to last answer): per token of prompt and output, and
    per output token, of the completed requests."""
    ok = [t for t in traces if t.ok]
    return energy_per_token(
        energy, sum(t.output_tokens for t in ok), sum(t.prompt_tokens for t in ok)
    )


def energy_per_token(energy: EnergyWindow, output: int, prompt: int) -> dict:
    metrics = energy.metrics(output + prompt)
    joules = metrics["energy_j"]
    metrics["joules_per_output_token"] = round(joules / output, 6) if joules and output else None
    return metrics


def progress_printer(log):
    shown = set()

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth not in shown:
            shown.add(tenth)
            log(f"  {done}/{total} requests done")

    return progress
