"""Table I: the hardware of each platform, read from the environment manifests of its records."""

from __future__ import annotations

import pandas as pd


def hardware_table(records: list[dict]) -> pd.DataFrame:
    """Table I: one row per platform, from the manifests of its records."""
    rows = {}
    for record in records:
        env = record["environment"]
        if env.get("recorded_by"):
            continue  # written where Snakemake ran, not on the platform's machine
        host, acc = env["host"], env.get("accelerators") or {}
        gpus = acc.get("gpus") or []
        rows[record["cell"]["platform"]] = {
            "platform": record["cell"]["platform"],
            "GPU": f"{len(gpus)}x {gpus[0]['name']}" if gpus else "none",
            "GPU memory (GB)": gpus[0]["memory_gb"] if gpus else "-",
            "CPU": host["cpu_model"],
            "CPU cores": host["cpu_logical_cores"],
            "host memory (GB)": host["host_memory_gb"],
            "interconnect": acc.get("interconnect", "-") if gpus else "-",
            "driver / CUDA": f"{acc.get('driver', '-')} / {acc.get('cuda', '-')}" if gpus else "-",
            "torch": env["libraries"].get("torch", "-"),
        }
    return pd.DataFrame(list(rows.values()))
