"""Engines as launch templates: each kind turns its config into a server command line, a health
URL and the request fields it accepts. EngineServer starts one on 127.0.0.1, waits for it with a
deadline, and stops its whole process group, also when the run fails."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .loadgen import Endpoint

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Launch:
    """What to run and how to reach it once it is up."""

    command: list[str] | None  # None: the engine is already running elsewhere
    env: dict[str, str]
    health_url: str
    endpoint: Endpoint
    version_probe: list[str] | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def engine_python(template: dict) -> str:
    """The interpreter with the engine installed: its own venv on the CPU, this one elsewhere."""
    python = template.get("python")
    if not python:
        return sys.executable
    found = shutil.which(python)
    if not found:
        raise FileNotFoundError(
            f"engine python {python!r} does not exist (set up the engine's environment first)"
        )
    return found


def vllm_engine_flags(template: dict, max_model_len: int) -> list[str]:
    """The engine settings a served and an offline vLLM cell share, as vLLM's own flags."""
    flags = [
        "--load-format", "dummy",  # random weights: runtime does not depend on their values
        "--dtype", template["dtype"],
        "--tensor-parallel-size", str(template["tensor_parallel_size"]),
        "--gpu-memory-utilization", str(template["memory_fraction"]),
        "--max-model-len", str(max_model_len),
    ]  # fmt: skip
    if template.get("max_batch_tokens"):
        flags += ["--max-num-batched-tokens", str(template["max_batch_tokens"])]
    return flags + [str(arg) for arg in template.get("extra_args", [])]


def vllm_launch(template: dict, model: str, model_dir: Path, max_model_len: int) -> Launch:
    port = template.get("port") or free_port()
    python = engine_python(template)
    command = [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", model,
        "--host", HOST,
        "--port", str(port),
        *vllm_engine_flags(template, max_model_len),
    ]  # fmt: skip
    base = f"http://{HOST}:{port}"
    return Launch(
        command=command,
        env={str(k): str(v) for k, v in (template.get("env") or {}).items()},
        health_url=base + "/health",
        # token ids in every chunk: a chunk's token count is read, not assumed
        endpoint=Endpoint(base, model, extra_body={"return_token_ids": True}),
        version_probe=[python, "-c", "import vllm; print(vllm.__version__)"],
    )


def transformers_serve_launch(
    template: dict, model: str, model_dir: Path, max_model_len: int
) -> Launch:
    """`transformers serve` with continuous batching, pinned to the checkpoint folder. It takes
    text prompts only and refuses ignore_eos; an eos id of -1 (no token has it) gives every
    response its full max_tokens instead."""
    port = template.get("port") or free_port()
    python = engine_python(template)
    command = [
        python, "-c", "from transformers.cli.transformers import main; main()",
        "serve", str(model_dir), "--continuous-batching",
        "--dtype", template["dtype"],
        "--host", HOST,
        "--port", str(port),
    ]  # fmt: skip
    if template.get("max_batch_tokens"):
        command += ["--cb-max-batch-tokens", str(template["max_batch_tokens"])]
    command += [str(arg) for arg in template.get("extra_args", [])]
    base = f"http://{HOST}:{port}"
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1"}
    env.update({str(k): str(v) for k, v in (template.get("env") or {}).items()})
    return Launch(
        command=command,
        env=env,
        health_url=base + "/health",
        endpoint=Endpoint(
            base,
            str(model_dir),  # the server answers only to the folder it was started with
            prompt_as="text",
            ignore_eos=False,
            extra_body={"generation_config": json.dumps({"eos_token_id": -1})},
        ),
        version_probe=[python, "-c", "import transformers; print(transformers.__version__)"],
    )


def command_launch(template: dict, model: str, model_dir: Path, max_model_len: int) -> Launch:
    """Any engine from a command template: {python} {port} {host} {model} {model_dir}
    {max_model_len} {dtype} {tensor_parallel_size} {memory_fraction} are filled in (in its
    version_command too, whose last line of output is the record's engine version)."""
    port = template.get("port") or free_port()
    values = {
        "python": engine_python(template), "port": port, "host": HOST, "model": model,
        "model_dir": model_dir, "max_model_len": max_model_len, "dtype": template["dtype"],
        "tensor_parallel_size": template["tensor_parallel_size"],
        "memory_fraction": template["memory_fraction"],
    }  # fmt: skip
    base = f"http://{HOST}:{port}"
    version = template.get("version_command")
    return Launch(
        command=[str(arg).format(**values) for arg in template["command"]],
        env={str(k): str(v) for k, v in (template.get("env") or {}).items()},
        health_url=base + template.get("health_path", "/health"),
        endpoint=endpoint_from(template, base, model),
        version_probe=[str(arg).format(**values) for arg in version] if version else None,
    )


def external_launch(template: dict, model: str, model_dir: Path, max_model_len: int) -> Launch:
    base = template["base_url"].rstrip("/")
    return Launch(
        command=None,
        env={},
        health_url=base + template.get("health_path", "/v1/models"),
        endpoint=endpoint_from(template, base, template.get("served_model") or model),
    )


def endpoint_from(template: dict, base: str, model: str) -> Endpoint:
    return Endpoint(
        base,
        template.get("served_model") or model,
        api=template.get("api", "completions"),
        prompt_as=template.get("prompt_as", "token_ids"),
        ignore_eos=template.get("ignore_eos", True),
        extra_body=dict(template.get("extra_body") or {}),
    )


LAUNCHERS = {
    "vllm": vllm_launch,
    "transformers-serve": transformers_serve_launch,
    "command": command_launch,
    "external": external_launch,
}


def engine_launch(template: dict, model: str, model_dir: Path, max_model_len: int) -> Launch:
    kind = template["kind"]
    if kind not in LAUNCHERS:
        raise ValueError(f"engine kind {kind!r} is not one of {', '.join(LAUNCHERS)}")
    return LAUNCHERS[kind](template, model, Path(model_dir), max_model_len)


def engine_version(launch: Launch) -> str | None:
    if not launch.version_probe:
        return None
    try:
        out = subprocess.run(launch.version_probe, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout else None


class EngineDied(RuntimeError):
    pass


class EngineServer:
    """`with EngineServer(launch, log_path, deadline_s) as server:` the engine is healthy inside;
    its process group is stopped on the way out, whatever happened."""

    def __init__(self, launch: Launch, log_path: Path, deadline_s: float):
        self.launch = launch
        self.log_path = Path(log_path)
        self.deadline_s = deadline_s
        self.process: subprocess.Popen | None = None
        self.startup_s: float | None = None

    def __enter__(self) -> EngineServer:
        start = time.monotonic()
        if self.launch.command:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("w")
            self.process = subprocess.Popen(
                self.launch.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.launch.env},
                start_new_session=True,  # its own process group: stopped whole, workers too
            )
            log.close()
        try:
            self.wait_healthy(start)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - start
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_healthy(self, start: float) -> None:
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise EngineDied(
                    f"the engine exited with code {self.process.returncode} before it was "
                    f"healthy; its log ends:\n{self.log_tail()}"
                )
            if healthy(self.launch.health_url):
                return
            if time.monotonic() - start > self.deadline_s:
                raise TimeoutError(
                    f"the engine was not healthy at {self.launch.health_url} within "
                    f"{self.deadline_s:.0f} s; its log ends:\n{self.log_tail()}"
                )
            time.sleep(1.0)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, grace_s: float = 30.0) -> None:
        if self.process is not None:
            stop_process_group(self.process, grace_s)


def log_tail(log_path: Path, lines: int = 30) -> str:
    if not log_path.exists():
        return "(no log)"
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def stop_process_group(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to a process started in its own session, SIGKILL to its group after grace_s."""
    group = process.pid  # its own session: the group id is the leader's pid
    if process.poll() is None:
        os.killpg(group, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:  # workers that outlived the leader, also when the leader died on its own
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False
