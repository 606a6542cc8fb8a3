"""How many streamed tokens/s the load generator sustains on one CPU core.

It drives the synthetic streaming server (no model: tokens as fast as it can write them) with
the study's burst shape. The client is pinned to one core and the server to another. Two
figures: the streamed tokens/s reached over the makespan (a lower bound: client and server
wait on each other), and the output tokens per CPU-second the client spent, the rate one
fully busy core would sustain.

Run: python benchmarks/client_ceiling.py [--requests 1000] [--tokens 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import psutil

from llmdissect.serving.engines import EngineServer, Launch, free_port
from llmdissect.serving.loadgen import Arrivals, Endpoint, run_load
from llmdissect.serving.metrics import serving_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per request")
    parser.add_argument("--prompt-len", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--log", default="client_ceiling_server.log")
    args = parser.parse_args()

    cores = sorted(os.sched_getaffinity(0))
    client_core, server_core = cores[0], cores[-1]
    os.sched_setaffinity(0, {client_core})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        "taskset", "-c", str(server_core),
        sys.executable, "-m", "llmdissect.serving.synthetic_server", "--port", str(port),
    ]  # fmt: skip
    command += ["--events-per-write", "16"]  # keep the server's CPU cost below the client's
    launch = Launch(command, {}, base + "/health", Endpoint(base, "synthetic"))
    prompts = [list(range(args.prompt_len))] * args.requests
    results = []
    with EngineServer(launch, args.log, deadline_s=60) as server:
        server_process = psutil.Process(server.process.pid)
        for repeat in range(args.repeats):
            client_cpu, server_cpu = time.process_time(), server_process.cpu_times()
            traces = asyncio.run(run_load(launch.endpoint, prompts, args.tokens, Arrivals()))
            metrics = serving_metrics(traces)
            server_after = server_process.cpu_times()
            busy = {
                "client_cpu_s": time.process_time() - client_cpu,
                "server_cpu_s": (server_after.user + server_after.system)
                - (server_cpu.user + server_cpu.system),
            }
            busy["output_tokens_per_client_cpu_s"] = metrics["output_tokens"] / busy["client_cpu_s"]
            results.append({"repeat": repeat, **busy, **metrics})
            print(
                f"repeat {repeat}: {metrics['output_tokens_per_s']:,.0f} streamed tokens/s "
                f"({metrics['total_tokens_per_s']:,.0f} with the prompts), "
                f"{metrics['failed']} failed, makespan {metrics['makespan_s']:.2f} s; client CPU "
                f"{busy['client_cpu_s']:.2f} s = "
                f"{busy['output_tokens_per_client_cpu_s']:,.0f} tokens per CPU-second; "
                f"server CPU {busy['server_cpu_s']:.2f} s",
                flush=True,
            )
    best = max(results, key=lambda r: r["output_tokens_per_s"])
    summary = {
        "requests": args.requests,
        "prompt_len": args.prompt_len,
        "new_tokens": args.tokens,
        "cpu_model": cpu_model(),
        "reached_output_tokens_per_s": round(best["output_tokens_per_s"]),
        "reached_total_tokens_per_s": round(best["total_tokens_per_s"]),
        "output_tokens_per_client_cpu_s": round(
            max(r["output_tokens_per_client_cpu_s"] for r in results)
        ),
    }
    print(json.dumps(summary, indent=2))


def cpu_model() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
