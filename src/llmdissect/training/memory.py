"""Device memory: a cap to emulate a smaller device, and the peaks a step reached.

On the CPU the cap is RLIMIT_DATA, so an allocation past it fails inside torch exactly as a GPU
allocation fails past the card's memory; the peak is the process's maximum resident set.
"""

from __future__ import annotations

import resource
from pathlib import Path

import torch

from ..oom import says_out_of_memory

GB = 2**30
# Share of a GPU's memory that torch's caching allocator loses to fragmentation near the edge:
# on the H200 at 7B, Megatron-core's batch 26 fitted with 123.7 GB allocated and 135.8 GB
# reserved of 138.5 usable (139.8 less 1.3 held beyond torch), and batch 27 did not.
ALLOCATOR_HEADROOM = 0.08


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


class PhasePeaks:
    """Peak allocated memory of each phase of a step (forward, backward, optimizer), and of the
    forward and backward passes together.

    A largest-batch search draws memory against batch, but at small batches the whole step's
    peak does not grow with the batch: at 7B on an H200 the optimizer step set it (62.8 GB at
    batch 1 and at 4), and the forward and backward peak was flat too (about 50.3 GB), most
    likely held up by the weight gradients. The forward peak alone (weights, optimizer state,
    saved activations) should grow from batch 1, so each phase is kept apart. Torch keeps one
    peak counter, so each phase change folds it into the phase's own peak and the running
    overall peak, then resets it."""

    def __init__(self, device: str):
        self.device = device
        self.group: str | None = None
        self.allocated: dict[str, int] = {}  # phase -> peak bytes
        self.overall = (0, 0)  # peak allocated, peak reserved bytes over every phase

    def fold(self) -> None:
        allocated = torch.cuda.max_memory_allocated(self.device)
        reserved = torch.cuda.max_memory_reserved(self.device)
        if self.group:
            self.allocated[self.group] = max(self.allocated.get(self.group, 0), allocated)
        self.overall = (max(self.overall[0], allocated), max(self.overall[1], reserved))

    def enter(self, name: str) -> None:
        if name != self.group:
            self.fold()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.group = name

    def peaks(self) -> dict[str, int]:
        """Each phase's peak, and the forward and backward passes' together."""
        peaks = dict(self.allocated)
        passes = [peaks[name] for name in ("forward", "backward") if name in peaks]
        if passes:
            peaks["forward_backward"] = max(passes)
        return peaks

    def reset(self) -> None:
        self.allocated, self.overall = {}, (0, 0)
        torch.cuda.reset_peak_memory_stats(self.device)


_phase_peaks: PhasePeaks | None = None


def track_phases(device: str) -> None:
    """Keep per-phase peaks in this process (GPUs: the CPU has no peak counter to split)."""
    global _phase_peaks
    _phase_peaks = PhasePeaks(device) if device.startswith("cuda") else None


def enter_phase(name: str) -> None:
    if _phase_peaks is not None:
        _phase_peaks.enter(name)


def reset_peaks(device: str) -> None:
    if _phase_peaks is not None:
        _phase_peaks.reset()
    elif device.startswith("cuda"):
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


def process_status_kib() -> dict[str, int]:
    """The kB fields of /proc/self/status (VmPeak, VmSize, VmData ...); empty if unreadable."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        if value.strip().endswith(" kB"):
            fields[name] = int(value.split()[0])
    return fields


def peak_data_gb() -> float | None:
    """The peak of what RLIMIT_DATA counts (private writable mappings), from the peak of the
    whole address space less the mappings that are not data (code, shared files), which stay
    put once the imports are done."""
    status = process_status_kib()
    if not {"VmPeak", "VmSize", "VmData"} <= status.keys():
        return None
    not_data = status["VmSize"] - status["VmData"]
    return (status["VmPeak"] - not_data) * 1024 / GB


def capacity_gb(device: str, limit_gb: float | None) -> float | None:
    """The memory a probe may fill before it runs out: its cap, else the whole GPU (None on an
    uncapped CPU, whose limit is the host's and not the cell's)."""
    if limit_gb is not None:
        return limit_gb
    if device.startswith("cuda"):
        return torch.cuda.get_device_properties(torch.device(device)).total_memory / GB
    return None


def peak_memory(device: str, device_peak_gb: float | None, limit_gb: float | None = None) -> dict:
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB  # ru_maxrss is KiB
    data_gb = peak_data_gb()
    stats = {
        "peak_mem_allocated_gb": None,
        "peak_mem_reserved_gb": None,
        "peak_mem_device_gb": device_peak_gb,
        "peak_rss_gb": round(rss_gb, 3),
        "peak_data_gb": None if data_gb is None else round(data_gb, 3),
        "memory_capacity_gb": round_or_none(capacity_gb(device, limit_gb)),
    }
    if device.startswith("cuda"):
        allocated = torch.cuda.max_memory_allocated(device)
        reserved = torch.cuda.max_memory_reserved(device)
        if _phase_peaks is not None:
            _phase_peaks.fold()
            allocated, reserved = _phase_peaks.overall
            for phase, peak in _phase_peaks.peaks().items():
                stats[f"peak_mem_{phase}_allocated_gb"] = round(peak / GB, 3)
        stats["peak_mem_allocated_gb"] = round(allocated / GB, 3)
        stats["peak_mem_reserved_gb"] = round(reserved / GB, 3)
        free, total = torch.cuda.mem_get_info(device)
        # what the device holds beyond torch's cache: the CUDA context, library workspaces
        held = (total - free - torch.cuda.memory_reserved(device)) / GB
        stats["device_overhead_gb"] = round(max(0.0, held), 3)
    return stats


def round_or_none(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def search_memory(metrics: dict) -> tuple[float | None, float | None]:
    """What a batch search predicts with: the peak memory a fitting probe used and the memory
    it could have used, in the same terms. On a GPU, the forward and backward passes' peak
    allocations (they grow with the batch) against the card (or the cap) less what the device
    holds beyond torch (the CUDA context) and the allocator's headroom; on a CPU, the data
    segment against RLIMIT_DATA."""
    capacity = metrics.get("memory_capacity_gb")
    allocated = metrics.get("peak_mem_allocated_gb")
    if capacity is None:
        return None, None
    if allocated is None:
        return metrics.get("peak_data_gb"), capacity
    growing = metrics.get("peak_mem_forward_backward_allocated_gb") or allocated
    usable = capacity - (metrics.get("device_overhead_gb") or 0.0)
    return growing, usable * (1 - ALLOCATOR_HEADROOM)
