"""One training measurement in processes of its own, so an OOM or a crash cannot take the DAG down.

Child:  python -m llmdissect.training.probe SPEC.json OUTCOME_PREFIX [STEPS.jsonl]
        (under torchrun for distributed frameworks: one process per device, each writes
        OUTCOME_PREFIX.rank<R>.json)
Parent: run_probe(spec, workdir, ...) -> one outcome with status ok | oom | infeasible | error.
"""

from __future__ import annotations

import json
import os
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
from .loop import padded_batches, plain_steps, run_steps
from .memory import apply_memory_limit, is_out_of_memory, peak_memory
from .metrics import step_metrics
from .spec import TrainSpec

LOG_TAIL_CHARS = 300
NO_KERNEL_MARKER = "no available kernel"


def rank_device(spec: TrainSpec) -> str:
    if spec.device.startswith("cuda"):
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return spec.device


def init_process_group(device: str) -> None:
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")


def measure(spec: TrainSpec, steps_path: Path | None, rank: int) -> dict:
    import torch

    framework = get_framework(spec.framework)
    reason = framework.infeasible_reason(spec)
    if reason:
        return {"status": "infeasible", "reason": reason}
    device = rank_device(spec)
    if framework.distributed:
        init_process_group(device)
    apply_memory_limit(device, spec.memory_limit_gb)
    samples = read_training_samples(Path(spec.samples_path))
    try:
        trainer = framework.build(spec, device)
        data_rank = rank if trainer.data_parallel_rank is None else trainer.data_parallel_rank
        data_size = trainer.data_parallel_size or spec.world_size
        batches = padded_batches(samples, spec.batch_size, data_rank, data_size)
        steps, device_peak = run_steps(
            trainer, batches, device, spec.warmup_steps, spec.measured_steps
        )
        profiled = profile_if_asked(spec, trainer, batches, device, rank)
    except Exception as error:
        if is_out_of_memory(error):
            return {"status": "oom", "reason": first_line(error)}
        if NO_KERNEL_MARKER in str(error).lower():
            return {"status": "infeasible", "reason": first_line(error)}
        raise
    if steps_path is not None and rank == 0:
        with open(steps_path, "w") as f:
            for step in steps:
                f.write(json.dumps(asdict(step)) + "\n")
    device_name = torch.cuda.get_device_name(device) if device.startswith("cuda") else None
    counts = trainer.parameter_counts()
    metrics = step_metrics(
        steps,
        spec.shape,
        seq_len=max(len(s) for s in samples),
        batch_size=spec.batch_size,
        recompute=bool(trainer.details.get("recompute")),
        peak_tflops=peak_tflops(device_name),
        world_size=spec.world_size,
        data_parallel_size=data_size,
        matmul_params=counts.get("matmul_params"),
        trainable_matmul_params=counts.get("matmul_params_trainable"),
    )
    metrics.update(peak_memory(device, device_peak))
    metrics.update(counts)
    metrics["batch_size"] = spec.batch_size
    metrics["global_batch_size"] = spec.batch_size * data_size
    metrics["world_size"] = spec.world_size
    details = dict(trainer.details)
    if profiled:
        details["profiled_activity"] = profiled.pop("activity")
        metrics.update(profiled)
        # how much the profiler slowed a step: profiled over unprofiled median step time
        median_ms = metrics["step_time_ms_median"]
        metrics["profiler_overhead"] = profiled["profiled_step_ms"] / median_ms - 1
    return {"status": "ok", "metrics": metrics, "details": details}


def profile_if_asked(spec: TrainSpec, trainer, batches, device: str, rank: int) -> dict | None:
    """With options.profile, a few more steps under torch.profiler (rank 0 keeps the trace;
    the other ranks run the same steps unprofiled, so collectives stay matched)."""
    asked = spec.options.get("profile")
    if not asked:
        return None
    if rank != 0:
        plain_steps(trainer, batches, device, 1 + asked["active_steps"])
        return None
    from ..profiling.runner import profile_steps

    return profile_steps(trainer, batches, device, asked["active_steps"], asked["trace_path"])


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:500]


def main(argv: list[str]) -> int:
    spec_path, outcome_prefix = Path(argv[0]), argv[1]
    steps_path = Path(argv[2]) if len(argv) > 2 else None
    rank = int(os.environ.get("RANK", 0))
    spec = TrainSpec.from_json(spec_path.read_text())
    try:
        outcome = measure(spec, steps_path, rank)
    except Exception as error:
        traceback.print_exc()
        outcome = {"status": "error", "reason": first_line(error)}
    outcome["environment"] = collect_manifest()
    write_json_atomic(Path(f"{outcome_prefix}.rank{rank}.json"), outcome)
    # Exit at once, non-zero when this rank failed: torchrun then stops the peers, which may be
    # waiting in a collective that will never finish.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if outcome["status"] == "ok" else 1)


RENDEZVOUS_PORT = 29500


def launch_command(spec: TrainSpec, arguments: list[str], env=os.environ) -> list[str]:
    """One process, torchrun on this node, or (in a SLURM job over several nodes) one torchrun
    per node started by srun, meeting at the job's first node."""
    probe = ["-m", "llmdissect.training.probe", *arguments]
    if not get_framework(spec.framework).distributed:
        return [sys.executable, *probe]
    nodes = int(env.get("SLURM_JOB_NUM_NODES", "1"))
    if nodes == 1:
        return [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={spec.world_size}", *probe,
        ]  # fmt: skip
    return multi_node_command(spec.world_size, nodes, slurm_hosts(env), env["SLURM_JOB_ID"], probe)


def multi_node_command(
    world_size: int, nodes: int, hosts: list[str], job_id: str, probe: list[str]
) -> list[str]:
    if world_size % nodes:
        raise ValueError(f"world size {world_size} does not split evenly over {nodes} nodes")
    return [
        # --overlap: the job step running this cell already holds the allocation
        "srun", "--overlap", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
        sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}",
        f"--nproc_per_node={world_size // nodes}", "--rdzv_backend=c10d",
        f"--rdzv_endpoint={hosts[0]}:{RENDEZVOUS_PORT}", f"--rdzv_id=llmdissect-{job_id}",
        *probe,
    ]  # fmt: skip


def slurm_hosts(env) -> list[str]:
    """The job's nodes, in SLURM's order (the node list is compressed: node[01-04])."""
    listed = subprocess.run(
        ["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return listed.stdout.split()


def run_probe(
    spec: TrainSpec, workdir: Path, name: str, keep_steps: bool, timeout_s: float
) -> dict:
    """Run one probe in child processes; its spec, outcomes and log stay in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"{name}.spec.json"
    prefix = workdir / f"{name}.outcome"
    log_path = workdir / f"{name}.log"
    for old in workdir.glob(f"{name}.outcome.rank*.json"):
        old.unlink()
    spec.write(spec_path)
    arguments = [str(spec_path), str(prefix)]
    if keep_steps:
        arguments.append(str(workdir / f"{name}.steps.jsonl"))
    timed_out = False
    with open(log_path, "w") as log:
        # Its own process group, so every worker of the probe can be stopped at once.
        process = subprocess.Popen(
            launch_command(spec, arguments), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=probe_environment(),
        )  # fmt: skip
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    if timed_out:
        return {"status": "error", "reason": f"probe exceeded its {timeout_s:.0f} s time limit"}
    outcomes = [
        json.loads(p.read_text()) for p in sorted(workdir.glob(f"{name}.outcome.rank*.json"))
    ]
    if not outcomes:
        status, reason = died(process.returncode, log_path)
        return {"status": status, "reason": reason}
    return merge_rank_outcomes(outcomes)


def probe_environment() -> dict:
    """JIT-built ops (DeepSpeed's) are built once per environment and then reused: with its own
    pinned ninja first on PATH (two ninja versions disagree on the build log and each rebuilds
    what the other built) and, unless set, a build folder inside the environment (another clone's
    build in the shared default folder would be rebuilt over)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if os.access(sys.prefix, os.W_OK):  # a virtual environment, not a read-only system Python
        env.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
    return env


def merge_rank_outcomes(outcomes: list[dict]) -> dict:
    """Rank 0 speaks for the cell unless another rank ran out of memory or failed."""
    for status in ("oom", "error", "infeasible"):
        for outcome in outcomes:
            if outcome["status"] == status:
                return outcome
    return outcomes[0]


def died(returncode: int, log_path: Path) -> tuple[str, str]:
    """Status and reason for children that wrote no outcome: killed, or crashed in native code."""
    log = log_path.read_text(errors="replace").strip()
    tail = log[-LOG_TAIL_CHARS:]
    # torchrun exits 1 and reports a worker's SIGKILL in its log
    worker_killed = "Signal 9 (SIGKILL) received" in log
    if returncode in (-signal.SIGKILL, 128 + signal.SIGKILL) or worker_killed:
        return "oom", "probe killed by SIGKILL (the host's out-of-memory killer, most likely)"
    return "error", f"probe exited with code {returncode}: {tail or 'no output'}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
