"""Device memory: a cap to emulate a smaller device, and the peaks a step reached.

On the CPU the cap is RLIMIT_DATA, so an allocation past it fails inside torch exactly as a GPU
allocation fails past the card's memory; the peak is the process's maximum resident set.
"""

from __future__ import annotations

import resource

import torch

from ..oom import says_out_of_memory

GB = 2**30


def apply_memory_limit(device: str, limit_gb: float | None) -> None:
    if limit_gb is None:
        return
    if device.startswith("cuda"):
        total = torch.cuda.get_device_properties(torch.device(device)).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, limit_gb * GB / total), device)
    else:
        limit = int(limit_gb * GB)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and says_out_of_memory(str(error))


def reset_peaks(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def device_used_gb(device: str) -> float | None:
    """Memory in use on the whole device as NVML sees it (other processes included)."""
    if not device.startswith("cuda"):
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        index = torch.device(device).index or 0
        used = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).used
        pynvml.nvmlShutdown()
        return used / GB
    except Exception:  # NVML missing or unsupported: the torch counters still stand
        return None


def peak_memory(device: str, device_peak_gb: float | None) -> dict:
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB  # ru_maxrss is KiB
    stats = {
        "peak_mem_allocated_gb": None,
        "peak_mem_reserved_gb": None,
        "peak_mem_device_gb": device_peak_gb,
        "peak_rss_gb": round(rss_gb, 3),
    }
    if device.startswith("cuda"):
        stats["peak_mem_allocated_gb"] = round(torch.cuda.max_memory_allocated(device) / GB, 3)
        stats["peak_mem_reserved_gb"] = round(torch.cuda.max_memory_reserved(device) / GB, 3)
    return stats
