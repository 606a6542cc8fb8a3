"""An engine's offline mode: its batch API on every prompt of the cell, no server and no client.
Its throughput is what a served run of the same prompts is held against."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from ..energy import EnergyWindow
from .engines import engine_python, log_tail, stop_process_group, vllm_engine_flags
from .vllm_offline_worker import GENERATED, GENERATING

WORKER = Path(__file__).with_name("vllm_offline_worker.py")
EXIT_GRACE_S = 120
POLL_S = 0.05


class OfflineFailed(RuntimeError):
    pass


def offline_command(template: dict, model_dir: Path, prompts: Path, max_tokens: int,
                    max_model_len: int, counts: Path) -> list[str]:  # fmt: skip
    """The worker with the served cell's engine flags (vllm_engine_flags): the same settings."""
    return [
        engine_python(template), str(WORKER),
        "--model", str(model_dir),
        "--prompts", str(prompts),
        "--max-tokens", str(max_tokens),
        "--counts", str(counts),
        *vllm_engine_flags(template, max_model_len),
    ]  # fmt: skip


def run_offline(command: list[str], counts: Path, env: dict, log_path: Path, deadline_s: float,
                energy: EnergyWindow) -> dict:  # fmt: skip
    """Run the worker in its own process group, its output in log_path; the energy window opens
    and closes on the worker's marks around the measured generation. Returns its counts."""
    counts.unlink(missing_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env}, start_new_session=True)  # fmt: skip
    try:
        with log_path.open("rb") as log:
            wait_for_mark(process, log, GENERATING, deadline_s)
            energy.start()
            wait_for_mark(process, log, GENERATED, deadline_s)
            energy.stop()
        process.wait(timeout=EXIT_GRACE_S)
    except subprocess.TimeoutExpired:
        pass  # an engine slow to shut down: its counts are written before it exits
    finally:
        stop_process_group(process, grace_s=0)
    if not counts.exists():
        raise OfflineFailed(
            f"the offline engine exited with code {process.returncode} without its counts; "
            f"its log ends:\n{log_tail(log_path)}"
        )
    return json.loads(counts.read_text())


def wait_for_mark(process: subprocess.Popen, log, mark: str, deadline_s: float) -> None:
    """Read the log (binary) as it grows, only its new lines: this runs during the measured
    generation. Returns at the line that holds the mark."""
    start, wanted, step = time.monotonic(), mark.encode(), mark.split(": ")[1]
    while True:
        line = log.readline()
        if wanted in line:
            return
        if line.endswith(b"\n"):
            continue  # a whole line without the mark: read on
        log.seek(-len(line), os.SEEK_CUR)  # a line still being written: read it again later
        if process.poll() is not None:
            raise OfflineFailed(
                f"the offline engine exited with code {process.returncode} before {step}; "
                f"its log ends:\n{log_tail(Path(log.name))}"
            )
        if time.monotonic() - start > deadline_s:
            raise OfflineFailed(
                f"the offline engine was not {step} within {deadline_s:.0f} s; "
                f"its log ends:\n{log_tail(Path(log.name))}"
            )
        time.sleep(POLL_S)


def offline_metrics(counts: dict) -> dict:
    """Throughput over the measured generation: the served cell's names, no latencies."""
    elapsed, output = counts["elapsed_s"], counts["output_tokens"]
    return {
        "startup_s": counts["startup_s"],
        "elapsed_s": elapsed,
        "requests": counts["requests"],
        "completed": counts["requests"],
        "failed": 0,
        "token_count_mismatches": counts["token_count_mismatches"],
        "output_tokens": output,
        "output_tokens_per_s": output / elapsed,
        "total_tokens_per_s": (output + counts["prompt_tokens"]) / elapsed,
        "requests_per_s": counts["requests"] / elapsed,
    }
