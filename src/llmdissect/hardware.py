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
