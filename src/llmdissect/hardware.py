"""What a GPU model can do at most (vendor datasheets): dense bf16 FLOP/s for MFU and HFU, memory
bandwidth for MBU."""

from __future__ import annotations

PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A800": 312.0,
    "A100": 312.0,
    "RTX 4090": 165.2,
    "RTX 3090": 71.0,
}


# HBM bandwidth per GPU model, GB/s (vendor datasheets), for decode bandwidth use (MBU)
MEMORY_BANDWIDTH_GBS = {
    "H200": 4800.0,
    "H100 NVL": 3900.0,
    "H100 SXM": 3350.0,
    "H100 80GB HBM3": 3350.0,
    "H100 PCIe": 2000.0,
    "H100": 3350.0,
    "A100 SXM4 80GB": 2039.0,
    "A100 80GB PCIe": 1935.0,
    "A100": 1555.0,
    "A800": 2039.0,
    "RTX 4090": 1008.0,
    "RTX 3090": 936.0,
}


def memory_bandwidth_gbs(device_name: str | None) -> float | None:
    """The most specific table entry whose name appears in the device name, or None."""
    if not device_name:
        return None
    name = device_name.upper().replace("-", " ")
    matches = [key for key in MEMORY_BANDWIDTH_GBS if key.upper() in name]
    return MEMORY_BANDWIDTH_GBS[max(matches, key=len)] if matches else None


def peak_tflops(device_name: str | None) -> float | None:
    """The most specific table entry whose name appears in the device name, or None (CPUs)."""
    if not device_name:
        return None
    name = device_name.upper().replace("-", " ")
    matches = [key for key in PEAK_BF16_TFLOPS if key.upper() in name]
    if "H100" in name and "PCIE" not in name:
        matches = [m for m in matches if m != "H100 PCIe"]
    return PEAK_BF16_TFLOPS[max(matches, key=len)] if matches else None


def device_memory_gb() -> float | None:
    """Memory of the first GPU, GB, from nvidia-smi: asking torch would open a CUDA context in
    this process and take memory from the engine it is about to start."""
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    return float(lines[0]) * 2**20 / 1e9 if out.returncode == 0 and lines else None


def synchronize(device: str) -> None:
    """Wait for the device's queued work (a timing boundary); nothing to wait for on a CPU."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
