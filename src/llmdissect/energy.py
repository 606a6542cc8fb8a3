"""Energy counters: the NVIDIA driver's total-energy counter of each GPU a cell can see (NVML),
or the CPU packages' RAPL counters on a machine without GPUs. A counter that cannot be read
leaves energy null with the reason, never a guess."""

from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

NVML_LIBRARY = "libnvidia-ml.so.1"
RAPL_ROOT = Path("/sys/class/powercap")


class CounterUnavailable(Exception):
    """Why no energy counter can be read here."""


def visible_gpu_ids(env: dict | None = None) -> list[str] | None:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (indices or UUIDs);
    None when unset (every GPU)."""
    value = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


class NvmlCounter:
    """Millijoule counters of the visible GPUs, through the driver's library (no Python package
    needed; the driver ships it wherever there is an NVIDIA GPU)."""

    source = "nvml"

    def __init__(self, gpu_ids: list[str] | None):
        try:
            self.lib = ctypes.CDLL(NVML_LIBRARY)
        except OSError as error:
            raise CounterUnavailable(f"no NVML library ({NVML_LIBRARY})") from error
        self.call("nvmlInit_v2")
        self.handles = [self.handle(gpu) for gpu in self.gpu_list(gpu_ids)]
        if not self.handles:
            raise CounterUnavailable("no GPU visible (CUDA_VISIBLE_DEVICES is empty)")
        self.read()  # a GPU without the counter (before Volta, MIG slices) fails here

    def call(self, name: str, *args) -> None:
        code = getattr(self.lib, name)(*args)
        if code != 0:
            self.lib.nvmlErrorString.restype = ctypes.c_char_p
            message = self.lib.nvmlErrorString(code).decode()
            raise CounterUnavailable(f"NVML {name}: {message}")

    def gpu_list(self, gpu_ids: list[str] | None) -> list[str]:
        if gpu_ids is not None:
            return gpu_ids
        count = ctypes.c_uint()
        self.call("nvmlDeviceGetCount_v2", ctypes.byref(count))
        return [str(i) for i in range(count.value)]

    def handle(self, gpu: str) -> ctypes.c_void_p:
        # an index in CUDA_VISIBLE_DEVICES is read as NVML's (PCI bus) order: the same GPU
        # when CUDA_DEVICE_ORDER=PCI_BUS_ID, as SLURM and most launchers set
        handle = ctypes.c_void_p()
        if gpu.isdigit():
            self.call(
                "nvmlDeviceGetHandleByIndex_v2", ctypes.c_uint(int(gpu)), ctypes.byref(handle)
            )
        elif gpu.startswith("MIG-"):
            raise CounterUnavailable(f"{gpu} is a MIG slice: NVML counts energy per whole GPU")
        else:
            self.call("nvmlDeviceGetHandleByUUID", gpu.encode(), ctypes.byref(handle))
        return handle

    def read(self) -> list[float]:
        readings = []
        for handle in self.handles:
            millijoules = ctypes.c_ulonglong()
            self.call("nvmlDeviceGetTotalEnergyConsumption", handle, ctypes.byref(millijoules))
            readings.append(millijoules.value / 1000)
        return readings

    def wraps_j(self) -> list[float | None]:
        return [None] * len(self.handles)  # a 64-bit millijoule counter does not wrap


class RaplCounter:
    """Microjoule counters of the CPU packages (Intel RAPL through powercap; often root-only)."""

    source = "rapl"

    def __init__(self, root: Path = RAPL_ROOT):
        zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not zones:
            raise CounterUnavailable(f"no RAPL package counters under {root}")
        self.zones = zones
        try:
            self.read()
        except OSError as error:
            raise CounterUnavailable(f"RAPL counters cannot be read: {error}") from error

    def read(self) -> list[float]:
        return [int((zone / "energy_uj").read_text()) / 1e6 for zone in self.zones]

    def wraps_j(self) -> list[float | None]:
        return [int((zone / "max_energy_range_uj").read_text()) / 1e6 for zone in self.zones]


def open_counter(device: str):
    """The counter for a cell on `device` ("cuda..." or "cpu"); raises CounterUnavailable."""
    if device.startswith("cuda"):
        return NvmlCounter(visible_gpu_ids())
    return RaplCounter()


@dataclass
class EnergyWindow:
    """Energy between start() and stop(), summed over the counter's devices."""

    device: str
    counter: object = None
    reason: str | None = None
    before: list[float] = field(default_factory=list)
    started: float = 0.0
    joules: float | None = None
    seconds: float | None = None

    def start(self) -> EnergyWindow:
        try:
            self.counter = self.counter or open_counter(self.device)
            self.before = self.counter.read()
        except (CounterUnavailable, OSError) as error:
            self.counter, self.reason = None, str(error)
        self.started = time.perf_counter()
        return self

    def stop(self) -> EnergyWindow:
        self.seconds = time.perf_counter() - self.started
        if self.counter is None:
            return self
        try:
            after = self.counter.read()
            wraps = self.counter.wraps_j()
        except (CounterUnavailable, OSError) as error:
            self.reason = str(error)
            return self
        self.joules = sum(
            (b - a) % wrap if wrap else b - a
            for a, b, wrap in zip(self.before, after, wraps, strict=True)
        )
        return self

    def metrics(self, tokens: int) -> dict:
        """energy_j, joules_per_token, mean power, the counter and its device count; or null
        energy with the reason."""
        if self.joules is None:
            return {"energy_j": None, "joules_per_token": None, "energy_reason": self.reason}
        seconds = self.seconds or 0.0
        return {
            "energy_j": round(self.joules, 3),
            "joules_per_token": round(self.joules / tokens, 6) if tokens else None,
            "mean_power_w": round(self.joules / seconds, 1) if seconds > 0 else None,
            "energy_source": self.counter.source,
            "energy_devices": len(self.before),
        }
