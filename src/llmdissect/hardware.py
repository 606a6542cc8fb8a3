"""Peak dense bf16 tensor throughput per GPU model, for MFU and HFU (vendor datasheets)."""

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
