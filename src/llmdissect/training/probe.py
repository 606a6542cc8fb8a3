"""One training measurement in a process of its own, so an OOM or a crash cannot take the DAG down.

Child:  python -m llmdissect.training.probe SPEC.json OUTCOME.json [STEPS.jsonl]
Parent: run_probe(spec, workdir) -> outcome dict with status ok | oom | infeasible | error.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

from ..data import read_training_samples
from ..environment import collect_manifest
from ..hardware import peak_tflops
from ..records import write_json_atomic
from .frameworks import get_framework
from .loop import padded_batches, run_steps
from .memory import apply_memory_limit, is_out_of_memory, peak_memory
from .metrics import step_metrics
from .spec import TrainSpec

STDERR_TAIL_CHARS = 2000


def measure(spec: TrainSpec, steps_path: Path | None) -> dict:
    import torch

    framework = get_framework(spec.framework)
    reason = framework.infeasible_reason(spec)
    if reason:
        return {"status": "infeasible", "reason": reason}
    apply_memory_limit(spec.device, spec.memory_limit_gb)
    samples = read_training_samples(Path(spec.samples_path))
    try:
        trainer = framework.build(spec)
        batches = padded_batches(samples, spec.batch_size)
        steps, device_peak = run_steps(
            trainer, batches, spec.device, spec.warmup_steps, spec.measured_steps
        )
    except Exception as error:
        if is_out_of_memory(error):
            return {"status": "oom", "reason": first_line(error)}
        raise
    if steps_path is not None:
        with open(steps_path, "w") as f:
            for step in steps:
                f.write(json.dumps(asdict(step)) + "\n")
    device_name = (
        torch.cuda.get_device_name(spec.device) if spec.device.startswith("cuda") else None
    )
    seq_len = max(len(s) for s in samples)
    metrics = step_metrics(
        steps,
        spec.shape,
        seq_len,
        spec.batch_size,
        recompute=bool(trainer.details.get("recompute")),
        peak_tflops=peak_tflops(device_name),
    )
    metrics.update(peak_memory(spec.device, device_peak))
    metrics.update(trainer.parameter_counts())
    metrics["batch_size"] = spec.batch_size
    return {"status": "ok", "metrics": metrics, "details": trainer.details}


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:500]


def main(argv: list[str]) -> int:
    spec_path, outcome_path = Path(argv[0]), Path(argv[1])
    steps_path = Path(argv[2]) if len(argv) > 2 else None
    spec = TrainSpec.from_json(spec_path.read_text())
    try:
        outcome = measure(spec, steps_path)
    except Exception as error:
        traceback.print_exc()
        outcome = {"status": "error", "reason": first_line(error)}
    outcome["environment"] = collect_manifest()
    write_json_atomic(outcome_path, outcome)
    return 0


def run_probe(
    spec: TrainSpec, workdir: Path, name: str, keep_steps: bool, timeout_s: float
) -> dict:
    """Run one probe in a child process; its log and outcome stay in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"{name}.spec.json"
    outcome_path = workdir / f"{name}.outcome.json"
    log_path = workdir / f"{name}.log"
    outcome_path.unlink(missing_ok=True)
    spec.write(spec_path)
    command = [sys.executable, "-m", "llmdissect.training.probe", str(spec_path), str(outcome_path)]
    if keep_steps:
        command.append(str(workdir / f"{name}.steps.jsonl"))
    with open(log_path, "w") as log:
        try:
            done = subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return {"status": "error", "reason": f"probe exceeded its {timeout_s:.0f} s time limit"}
    if outcome_path.exists():
        return json.loads(outcome_path.read_text())
    status, reason = died(done.returncode, log_path)
    return {"status": status, "reason": reason}


def died(returncode: int, log_path: Path) -> tuple[str, str]:
    """Status and reason for a child that wrote no outcome: killed, or crashed in native code."""
    tail = log_path.read_text(errors="replace")[-STDERR_TAIL_CHARS:].strip()
    if returncode == -signal.SIGKILL:
        return "oom", "probe killed by SIGKILL (the host's out-of-memory killer, most likely)"
    return "error", f"probe exited with code {returncode}: {tail[-300:] or 'no output'}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
