"""An engine's offline mode: its batch API on every prompt of the cell, no server and no client.
Its throughput is what a served run of the same prompts is held against."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from ..energy import EnergyWindow
from .engines import engine_python
from .vllm_offline_worker import GENERATED, GENERATING

WORKER = Path(__file__).with_name("vllm_offline_worker.py")
EXIT_GRACE_S = 120


class OfflineFailed(RuntimeError):
    pass


def offline_command(template: dict, model_dir: Path, prompts: Path, max_tokens: int,
                    max_model_len: int, out: Path) -> list[str]:  # fmt: skip
    command = [
        engine_python(template), str(WORKER),
        "--model-dir", str(model_dir),
        "--prompts", str(prompts),
        "--max-tokens", str(max_tokens),
        "--max-model-len", str(max_model_len),
        "--dtype", template["dtype"],
        "--memory-fraction", str(template["memory_fraction"]),
        "--tensor-parallel-size", str(template["tensor_parallel_size"]),
        "--out", str(out),
    ]  # fmt: skip
    if template.get("max_batch_tokens"):
        command += ["--max-batch-tokens", str(template["max_batch_tokens"])]
    return command


def run_offline(command: list[str], env: dict, log_path: Path, deadline_s: float,
                energy: EnergyWindow) -> dict:  # fmt: skip
    """Run the worker in its own process group, its output in log_path; the energy window opens
    and closes on the worker's marks around the measured generation. Returns its counts."""
    out = Path(command[command.index("--out") + 1])
    out.unlink(missing_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env}, start_new_session=True)  # fmt: skip
    try:
        wait_for_mark(process, log_path, GENERATING, deadline_s)
        energy.start()
        wait_for_mark(process, log_path, GENERATED, deadline_s)
        energy.stop()
        process.wait(timeout=EXIT_GRACE_S)
    except subprocess.TimeoutExpired:
        pass  # an engine slow to shut down: its counts are written before it exits
    finally:
        stop_group(process)
    if not out.exists():
        raise OfflineFailed(
            f"the offline engine exited with code {process.returncode} without its counts; "
            f"its log ends:\n{log_tail(log_path)}"
        )
    return json.loads(out.read_text())


def wait_for_mark(process: subprocess.Popen, log_path: Path, mark: str, deadline_s: float) -> None:
    start = time.monotonic()
    while mark not in log_path.read_text(errors="replace"):
        if process.poll() is not None:
            raise OfflineFailed(
                f"the offline engine exited with code {process.returncode} before "
                f"{mark.split(': ')[1]}; its log ends:\n{log_tail(log_path)}"
            )
        if time.monotonic() - start > deadline_s:
            raise OfflineFailed(
                f"the offline engine was not {mark.split(': ')[1]} within {deadline_s:.0f} s; "
                f"its log ends:\n{log_tail(log_path)}"
            )
        time.sleep(0.05)


def stop_group(process: subprocess.Popen) -> None:
    try:  # its workers too
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def log_tail(log_path: Path, lines: int = 30) -> str:
    text = log_path.read_text(errors="replace") if log_path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


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
