"""Probes that start warm: a helper process imports torch and the cell's framework once, then
forks a fresh process for each probe of the cell, which runs exactly as a probe started from
scratch would (its own session, log, environment, memory cap), minus the seconds of imports.

On a CPU a batch search or a repeated cell runs several probes, and each fresh start spent
2 to 7 s importing (Megatron-core and PEFT the most): most of a tiny model's probe. Used for
single-process probes on CPUs only: a process that has touched CUDA cannot fork, and GPU probes
take long enough that the imports do not matter.

    helper = WarmStarter(env, modules)        # starts `python -m llmdissect.training.warm_start`
    pid = helper.start(argv, env, log_path)   # a forked probe: main(argv), output to log_path
    code = helper.wait(pid, timeout_s)        # its exit code (negative: killed by that signal)
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys

PROBE_MAIN = "llmdissect.training.probe:main"
# what a probe of each framework imports before its first step (a missing one is skipped: the
# probe then fails on it itself, with its own message)
WARM_IMPORTS = {
    "torch": ["torch", "transformers", "transformers.models.llama.modeling_llama"],
    "deepspeed": ["torch", "transformers", "transformers.models.llama.modeling_llama", "deepspeed"],
    "megatron": ["torch", "megatron.core", "megatron.core.models.gpt"],
}
METHOD_IMPORTS = {"lora": ["peft"], "qlora": ["peft", "bitsandbytes"], "quant4": ["bitsandbytes"]}


def warm_imports(framework: str, method: str) -> list[str]:
    modules = ["llmdissect.training.probe", *WARM_IMPORTS.get(framework, ["torch"])]
    for feature in method.split("+"):
        modules += METHOD_IMPORTS.get(feature, [])
    return list(dict.fromkeys(modules))


class WarmStarter:
    """The helper process, and the probes it forks on request."""

    def __init__(self, env: dict, modules: list[str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llmdissect.training.warm_start", *modules],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1,
        )  # fmt: skip

    def alive(self) -> bool:
        return self.process.poll() is None

    def start(self, argv: list[str], env: dict, log_path, target: str = PROBE_MAIN) -> int:
        """Forks `target(argv)` ("module:function"; the probe's main by default)."""
        request = {"argv": argv, "env": env, "log": str(log_path), "target": target}
        self.process.stdin.write(json.dumps(request) + "\n")
        return int(json.loads(self.read_line(None))["pid"])

    def wait(self, pid: int, timeout_s: float) -> tuple[int, bool]:
        """The probe's exit code, and whether it was killed for running past timeout_s."""
        line = self.read_line(timeout_s)
        if line is None:
            kill_group(pid)
            return int(json.loads(self.read_line(None))["code"]), True
        return int(json.loads(line)["code"]), False

    def read_line(self, timeout_s: float | None) -> str | None:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the warm-start helper died")
        return line

    def close(self) -> None:
        if self.alive():
            self.process.stdin.close()
            self.process.wait(timeout=30)


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_forked(argv: list[str], env: dict, log: str, target: str) -> None:
    """In the forked child: become the probe (never returns)."""
    try:
        os.setsid()  # its own process group: a time limit stops it and whatever it started
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.environ.clear()
        os.environ.update(env)
        module, _, function = target.partition(":")
        sys.argv = [module, *argv]
        getattr(importlib.import_module(module), function)(argv)  # the probe ends itself
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(70)


def serve(modules: list[str]) -> None:
    """The helper: import, then fork a probe per request line; answer its pid, then its code.
    The answers keep the pipe to themselves: what the imports print goes to stderr."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # the probe meets it again and says so
            print(f"warm start: {module} not imported: {error}", file=sys.stderr)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            out.close()  # the answers are the helper's to write
            run_forked(request["argv"], request["env"], request["log"], request["target"])
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
        _, status = os.waitpid(pid, 0)
        out.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
        out.flush()


if __name__ == "__main__":
    serve(sys.argv[1:])
