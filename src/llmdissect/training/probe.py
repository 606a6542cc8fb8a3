"""One training measurement in processes of its own, so an OOM or a crash cannot take the DAG down.

Child:  python -m llmdissect.training.probe SPEC.json OUTCOME_PREFIX [STEPS.jsonl]
        (under torchrun for distributed frameworks: one process per device, each writes
        OUTCOME_PREFIX.rank<R>.json)
Parent: run_probe(spec, workdir, ...) -> one outcome with status ok | oom | infeasible | error.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

from ..data import read_training_samples
from ..environment import collect_manifest
from ..frameworks import FRAMEWORKS
from ..hardware import peak_tflops
from ..records import write_json_atomic
from .frameworks import get_framework
from .loop import padded_batches, plain_steps, run_steps
from .memory import apply_memory_limit, is_out_of_memory, peak_memory, track_phases
from .metrics import step_metrics
from .spec import TrainSpec

LOG_TAIL_CHARS = 300
TEST_SEGFAULT_VARIABLE = "LLMDISSECT_TEST_SEGFAULT"
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
    track_phases(device)
    samples = read_training_samples(Path(spec.samples_path))
    try:
        trainer = framework.build(spec, device)
        data_rank = rank if trainer.data_parallel_rank is None else trainer.data_parallel_rank
        data_size = trainer.data_parallel_size or spec.world_size
        batches = padded_batches(samples, spec.batch_size, data_rank, data_size)
        steps, device_peak, energy = run_steps(
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
    metrics.update(peak_memory(device, device_peak, spec.memory_limit_gb))
    metrics.update(energy.metrics(sum(s.tokens for s in steps if not s.warmup)))
    metrics.update(counts)
    metrics["batch_size"] = spec.batch_size
    metrics["global_batch_size"] = spec.batch_size * data_size
    metrics["world_size"] = spec.world_size
    details = dict(trainer.details)
    if details.get("compile"):
        from .hf_llama import compile_cache_use

        details["compile"] = {**details["compile"], **compile_cache_use()}
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
    use_thread_count()
    crash_if_asked(spec_path, rank)
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


def use_thread_count() -> None:
    """torch's compute pool follows the thread count the parent chose (OpenMP code such as
    DeepSpeed's CPU Adam reads OMP_NUM_THREADS itself)."""
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))


# A port per job (20000 + job id % 10000): above the well-known, below the ephemeral ports.
RENDEZVOUS_PORTS = range(20000, 30000)


def rendezvous_port(job_id: str) -> int:
    return RENDEZVOUS_PORTS.start + int(job_id) % len(RENDEZVOUS_PORTS)


def launch_command(spec: TrainSpec, arguments: list[str], env=os.environ) -> list[str]:
    """One process, torchrun on this node, or (in a SLURM job over several nodes) one torchrun
    per node started by srun, meeting at the job's first node on the job's own port."""
    probe = ["-m", "llmdissect.training.probe", *arguments]
    nodes = int(env.get("SLURM_JOB_NUM_NODES", "1"))
    if not multi_process(spec) or lone_rank(spec, env):
        return [sys.executable, *probe]
    if nodes == 1:
        return [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={spec.world_size}", *probe,
        ]  # fmt: skip
    return multi_node_command(spec.world_size, nodes, slurm_hosts(env), env["SLURM_JOB_ID"], probe)


def lone_rank(spec: TrainSpec, env=os.environ) -> bool:
    """A distributed framework on one process of one node: started without torchrun (which
    costs seconds per probe), its process group of one set up through lone_rank_rendezvous()."""
    one_node = env.get("SLURM_JOB_NUM_NODES", "1") == "1"
    return multi_process(spec) and spec.world_size == 1 and one_node


def lone_rank_rendezvous() -> dict:
    """What torchrun would set for a single rank: rank 0 of 1, on a free local port."""
    import socket

    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    return {
        "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
    }  # fmt: skip


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
        f"--rdzv_endpoint={hosts[0]}:{rendezvous_port(job_id)}", f"--rdzv_id=llmdissect-{job_id}",
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
    spec: TrainSpec,
    workdir: Path,
    name: str,
    keep_steps: bool,
    timeout_s: float,
    retries: int = 0,
) -> dict:
    """Run one probe in child processes; its spec, outcomes and log stay in workdir. A probe
    that crashed (a process killed by a signal other than the OOM killer's, or gone without an
    outcome) is run again up to `retries` times: such crashes are often transient."""
    for attempt in range(1, retries + 2):
        outcome = run_probe_once(spec, workdir, name, keep_steps, timeout_s)
        if not outcome.get("crashed"):
            break
        if attempt <= retries:
            shutil.copyfile(workdir / f"{name}.log", workdir / f"{name}.attempt{attempt}.log")
    if attempt > 1:
        outcome.setdefault("details", {})["probe_attempts"] = attempt
        if outcome.get("crashed"):
            outcome["reason"] = f"{outcome['reason']} (on each of {attempt} attempts)"
    return outcome


def run_probe_once(
    spec: TrainSpec, workdir: Path, name: str, keep_steps: bool, timeout_s: float
) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"{name}.spec.json"
    prefix = workdir / f"{name}.outcome"
    log_path = workdir / f"{name}.log"
    steps_path = workdir / f"{name}.steps.jsonl"
    for old in [*workdir.glob(f"{name}.outcome.rank*.json"), steps_path]:
        old.unlink(missing_ok=True)
    spec.write(spec_path)
    arguments = [str(spec_path), str(prefix)]
    if keep_steps:
        arguments.append(str(steps_path))
    env = probe_environment(threads_per_process(spec))
    if warm_startable(spec):
        starter = warm_starter(spec, env)
        if lone_rank(spec):
            env.update(lone_rank_rendezvous())
        pid = starter.start(arguments, env, log_path)
        returncode, timed_out = starter.wait(pid, timeout_s)
    else:
        if lone_rank(spec):
            env.update(lone_rank_rendezvous())
        returncode, timed_out = run_launched(spec, arguments, env, log_path, timeout_s)
    if timed_out:
        return {"status": "error", "reason": f"probe exceeded its {timeout_s:.0f} s time limit"}
    outcomes = [
        json.loads(p.read_text()) for p in sorted(workdir.glob(f"{name}.outcome.rank*.json"))
    ]
    failed = [o for o in outcomes if o["status"] != "ok"]
    if len(outcomes) < expected_outcomes(spec) and not failed:
        # a rank ended without a word: its own crash, not a failure another rank reported
        status, reason = died(returncode, log_path)
        return {"status": status, "reason": reason, "crashed": status == "error"}
    return merge_rank_outcomes(outcomes)


def run_launched(
    spec: TrainSpec, arguments: list[str], env: dict, log_path: Path, timeout_s: float
) -> tuple[int, bool]:
    """The probe as new processes (one, or torchrun's): its exit code and whether it ran past
    its time limit."""
    timed_out = False
    with open(log_path, "w") as log:
        # Its own process group, so every worker of the probe can be stopped at once.
        process = subprocess.Popen(
            launch_command(spec, arguments), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env,
        )  # fmt: skip
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return process.returncode, timed_out


def warm_startable(spec: TrainSpec) -> bool:
    """One process on a CPU: forked from a helper that imported its framework (warm_start.py)."""
    return spec.device == "cpu" and (not multi_process(spec) or lone_rank(spec))


WARM_STARTERS: dict = {}


def warm_starter(spec: TrainSpec, env: dict):
    """This job's helper for the spec's framework and method (started on first use; started
    again if it died), closed when the job's process ends."""
    from .warm_start import WarmStarter, warm_imports

    modules = warm_imports(spec.framework, spec.method)
    key = (tuple(modules), env.get("OMP_NUM_THREADS"))
    starter = WARM_STARTERS.get(key)
    if starter is None or not starter.alive():
        if not WARM_STARTERS:
            atexit.register(lambda: [s.close() for s in WARM_STARTERS.values()])
        starter = WARM_STARTERS[key] = WarmStarter(env, modules)
    return starter


def multi_process(spec: TrainSpec) -> bool:
    """Started by torchrun, a process per device (read without importing the framework)."""
    return FRAMEWORKS[spec.framework].multi_process


def expected_outcomes(spec: TrainSpec) -> int:
    """Every rank writes an outcome; a single-process probe writes one."""
    return spec.world_size if multi_process(spec) else 1


def threads_per_process(spec: TrainSpec, env=os.environ) -> int | None:
    """The cell's CPU threads shared among the processes this node runs for it."""
    if spec.cpu_threads is None:
        return None
    processes = 1
    if multi_process(spec):
        processes = spec.world_size // int(env.get("SLURM_JOB_NUM_NODES", "1"))
    return max(1, spec.cpu_threads // max(1, processes))


def probe_environment(threads: int | None = None) -> dict:
    """The thread count every OpenMP and MKL pool of the probe uses (Snakemake sets both to the
    job's threads, torchrun to 1 when unset). JIT-built ops (DeepSpeed's) are built once per
    environment and then reused: with its own pinned ninja first on PATH (two ninja versions
    disagree on the build log and each rebuilds what the other built) and, unless set, a build
    folder inside the environment (another clone's build in the shared default folder would be
    rebuilt over)."""
    env = dict(os.environ)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
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
    signal_name = killing_signal(returncode, log)
    if signal_name == "SIGKILL":
        return "oom", "probe killed by SIGKILL (the host's out-of-memory killer, most likely)"
    how = f"died by {signal_name}" if signal_name else f"exited with code {returncode}"
    return "error", f"probe {how} without an outcome: {tail or 'no output'}"


# torchrun exits 1 and names a worker's signal in its log: "Signal 11 (SIGSEGV) received by PID"
TORCHRUN_SIGNAL = re.compile(r"Signal \d+ \((SIG[A-Z0-9]+)\) received")


def killing_signal(returncode: int, log: str) -> str | None:
    """The signal that ended the probe: torchrun's root-cause worker's where it names one (it
    stops the other workers itself), else the one that ended the process."""
    root_cause = log[log.find("Root Cause") :] if "Root Cause" in log else log
    match = TORCHRUN_SIGNAL.search(root_cause)
    if match:
        return match.group(1)
    for number in (-returncode, returncode - 128):
        if 0 < number < signal.NSIG:
            return signal.Signals(number).name
    return None


def crash_if_asked(spec_path: Path, rank: int) -> None:
    """A fault switch for tests (named so, never set by the pipeline): LLMDISSECT_TEST_SEGFAULT
    = "<part of the probe's path>[@<attempts>]" makes rank 0 of matching probes die by SIGSEGV,
    on every attempt or on the first <attempts> ones."""
    asked = os.environ.get(TEST_SEGFAULT_VARIABLE)
    if not asked or rank != 0:
        return
    pattern, _, attempts = asked.partition("@")
    if pattern not in str(spec_path):
        return
    marker = spec_path.with_suffix(".crashes")
    crashes = len(marker.read_text()) if marker.exists() else 0
    if attempts and crashes >= int(attempts):
        return
    marker.write_text("x" * (crashes + 1))
    os.kill(os.getpid(), signal.SIGSEGV)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
