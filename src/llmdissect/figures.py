"""Figures of the study from the per-cell table (PNG for reading, PDF for papers)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .tables import memory_metric  # noqa: E402


def save(figure, png: Path, pdf: Path) -> None:
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150, bbox_inches="tight")
    figure.savefig(pdf, bbox_inches="tight")
    plt.close(figure)


def training_throughput_figure(cells: pd.DataFrame, stage: str, png: Path, pdf: Path) -> None:
    """Throughput and peak memory per configuration, batch 1 beside the largest batch.

    Cells that did not run show their status (OOM, n/a) in place of a bar.
    """
    cells = cells[cells["stage"] == stage].copy()
    cells["config"] = (
        cells["platform"]
        + " / "
        + cells["model"]
        + "\n"
        + cells["framework"]
        + " "
        + cells["method"]
    )
    configs = list(dict.fromkeys(cells["config"]))
    batches = sorted(set(cells["batch"]), key=lambda b: (b == "max", int(b) if b != "max" else 0))
    figure, axes = plt.subplots(1, 2, figsize=(max(7, 2.2 * len(configs) + 3), 4.2))
    width = 0.8 / max(1, len(batches))
    for offset, batch in enumerate(batches):
        for position, config in enumerate(configs):
            match = cells[(cells["config"] == config) & (cells["batch"] == batch)]
            if match.empty:
                continue
            row = match.iloc[0]
            x = position + (offset - (len(batches) - 1) / 2) * width
            values = [row.get("tokens_per_s"), memory_metric(row)[0]]
            for axis, value in zip(axes, values, strict=True):
                if row["status"] == "ok" and value is not None and pd.notna(value):
                    bar = axis.bar(x, value, width, color=f"C{offset}")
                    if batch == "max":
                        axis.bar_label(bar, labels=[f"b={int(row['batch_size'])}"], fontsize=7)
                else:
                    axis.text(
                        x,
                        0,
                        row["status"].upper(),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        rotation=90,
                        color="firebrick",
                    )
    for axis, label in zip(axes, ["throughput (tokens/s)", "peak memory (GB)"], strict=True):
        axis.set_xticks(range(len(configs)), configs, fontsize=7)
        axis.set_ylabel(label)
        axis.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{i}") for i in range(len(batches))]
    labels = ["largest batch" if b == "max" else f"batch {b}" for b in batches]
    axes[0].legend(handles, labels, loc="lower left", fontsize=8)
    figure.suptitle(f"{stage}: throughput and memory per configuration")
    figure.tight_layout()
    save(figure, png, pdf)
