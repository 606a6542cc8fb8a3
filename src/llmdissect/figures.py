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
    # no creation date: the same records render to the same bytes
    figure.savefig(pdf, bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(figure)


def compact(value: float) -> str:
    """12345.6 -> '12.3k', 101.2 -> '101'."""
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.3g}"


def training_throughput_figure(cells: pd.DataFrame, stage: str, png: Path, pdf: Path) -> None:
    """Throughput and peak memory per configuration as horizontal bars (one row each, so a grid
    of many methods stays readable), batch 1 beside the largest batch.

    Cells that did not run show their status (OOM, n/a) in place of a bar.
    """
    cells = cells[cells["stage"] == stage].copy()
    cells["config"] = (
        cells["platform"]
        + " / "
        + cells["model"]
        + " / "
        + cells["framework"]
        + " "
        + cells["method"]
    )
    if "world_size" in cells:
        many = cells["world_size"].fillna(1).astype(int) > 1
        cells.loc[many, "config"] += " x" + cells.loc[many, "world_size"].astype(int).astype(str)
    configs = list(dict.fromkeys(cells["config"]))
    batches = sorted(set(cells["batch"]), key=lambda b: (b == "max", int(b) if b != "max" else 0))
    height = max(3.0, 0.32 * len(configs) * max(1, len(batches)) + 1.2)
    figure, axes = plt.subplots(1, 2, figsize=(13, height), sharey=True)
    width = 0.8 / max(1, len(batches))
    for offset, batch in enumerate(batches):
        for position, config in enumerate(configs):
            match = cells[(cells["config"] == config) & (cells["batch"] == batch)]
            if match.empty:
                continue
            row = match.iloc[0]
            y = position + (offset - (len(batches) - 1) / 2) * width
            values = [row.get("tokens_per_s"), memory_metric(row)[0]]
            for axis, value in zip(axes, values, strict=True):
                if row["status"] == "ok" and value is not None and pd.notna(value):
                    bar = axis.barh(y, value, width, color=f"C{offset}")
                    # throughput as a number too: offload cells are 100x slower, their bars
                    # too short to see
                    label = f" {compact(value)}" if axis is axes[0] else ""
                    if batch == "max":
                        label += f" b={int(row['batch_size'])}"
                    axis.bar_label(bar, labels=[label], fontsize=7)
                else:
                    axis.text(0, y, f" {row['status'].upper()}", va="center", fontsize=7,
                              color="firebrick")  # fmt: skip
    for axis, label in zip(axes, ["throughput (tokens/s)", "peak memory (GB)"], strict=True):
        axis.set_yticks(range(len(configs)), configs, fontsize=7)
        axis.set_xlabel(label)
        axis.grid(axis="x", alpha=0.3)
        axis.margins(x=0.15)  # room for the labels past the longest bar
    axes[0].invert_yaxis()  # first configuration on top, as in the tables (the axis is shared)
    handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{i}") for i in range(len(batches))]
    labels = ["largest batch" if b == "max" else f"batch {b}" for b in batches]
    # above the panels, where no bar can sit under it
    figure.legend(handles, labels, loc="upper right", ncol=max(1, len(labels)), fontsize=8)
    figure.suptitle(f"{stage}: throughput and memory per configuration", x=0.3)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    save(figure, png, pdf)


def method_tradeoff_figure(cells: pd.DataFrame, stage: str, png: Path, pdf: Path) -> None:
    """Throughput against peak memory, one point per measured cell, one panel per model:
    methods that save memory sit left, methods that cost throughput sit low."""
    cells = cells[(cells["stage"] == stage) & (cells["status"] == "ok")].copy()
    models = list(dict.fromkeys(cells["model"])) or ["(no measured cells)"]
    figure, axes = plt.subplots(1, len(models), figsize=(7 * len(models), 5), squeeze=False)
    for axis, model in zip(axes[0], models, strict=True):
        subset = cells[cells["model"] == model]
        for marker, (batch_mode, group) in zip("os^v", subset.groupby("batch"), strict=False):
            memory = [memory_metric(row)[0] for _, row in group.iterrows()]
            axis.scatter(memory, group["tokens_per_s"], marker=marker, label=f"batch {batch_mode}")
            for x, (_, row) in zip(memory, group.iterrows(), strict=True):
                label = f"{row['framework']}:{row['method']}"
                if int(row.get("world_size", 1)) > 1:
                    label += f" x{int(row['world_size'])}"
                axis.annotate(label, (x, row["tokens_per_s"]), fontsize=6, xytext=(3, 3),
                              textcoords="offset points")  # fmt: skip
        axis.set_title(model)
        axis.set_xlabel("peak memory per process (GB)")
        axis.set_ylabel("throughput (tokens/s)")
        axis.grid(alpha=0.3)
        if len(subset):
            axis.legend(fontsize=7)
            speeds = subset["tokens_per_s"]
            if speeds.min() > 0 and speeds.max() / speeds.min() > 20:
                axis.set_yscale("log")  # offloaded batch-1 cells sit far below batch-max ones
    figure.suptitle(f"{stage}: throughput against memory per method")
    figure.tight_layout()
    save(figure, png, pdf)


def idle_share_figure(cells: pd.DataFrame, stage: str, png: Path, pdf: Path) -> None:
    """Fig. 5: the idle share of each phase per profiled cell, one bar per phase."""
    cells = cells[(cells["stage"] == stage) & (cells["status"] == "ok")].copy()
    phases = ["step", "forward", "backward", "optimizer"]
    if cells.empty or not any(f"{p}_idle_share" in cells for p in phases):
        figure, axis = plt.subplots(figsize=(6, 1.5))
        axis.axis("off")
        axis.text(0.5, 0.5, "no profiled cells", ha="center", va="center")
        return save(figure, png, pdf)
    labels = [
        f"{r['platform']} / {r['model']} / {r['framework']} {r['method']} / b={r['batch_size']:.0f}"
        + (f" x {r['world_size']:.0f} processes" if r["world_size"] > 1 else "")
        for _, r in cells.iterrows()
    ]
    figure, axis = plt.subplots(figsize=(9, max(2.5, 0.5 * len(cells) + 1.2)))
    width = 0.8 / len(phases)
    for offset, name in enumerate(phases):
        values = cells.get(f"{name}_idle_share")
        if values is None:
            continue
        y = [i + (offset - 1.5) * width for i in range(len(cells))]
        axis.barh(y, 100 * values.to_numpy(dtype=float), width, color=f"C{offset}", label=name)
    axis.set_yticks(range(len(cells)), labels, fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("idle share of the phase (%): 1 - busy / wall")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize=8)
    activity = "GPU kernels" if cells["gpu"].ne("cpu").any() else "CPU operators"
    axis.set_title(f"Fig. 5: idle time per phase (busy = {activity} running)")
    figure.tight_layout()
    save(figure, png, pdf)
