"""The optimization ladder (beyond the study): one row per rung, each adding one feature, all at
one batch, with the speed-up over the first rung; and its figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..methods import parse_method
from .format import shown
from .plot import empty_figure, plt, save
from .training import memory_metric


def rung_order(rungs: pd.DataFrame) -> list[str]:
    """Rungs in the config's order (each record keeps its place); records without one from the
    fewest features to the most."""
    place = dict(zip(rungs["method"], rungs.get("ladder_rung", [None] * len(rungs)), strict=True))
    return sorted(
        place,
        key=lambda m: (pd.isna(place[m]), place[m] if pd.notna(place[m]) else 0,
                       len(parse_method(m)), m),
    )  # fmt: skip


def ladders(cells: pd.DataFrame):
    """(platform, model, framework, rungs in order) per ladder among the cells."""
    cells = cells[cells["stage"] == "ladder"]
    for (platform, model, framework), group in cells.groupby(
        ["platform", "model", "framework"], sort=False
    ):
        ordered = rung_order(group)
        yield platform, model, framework, group.set_index("method").loc[ordered].reset_index()


def ladder_table(cells: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    rows = []
    for platform, model, framework, rungs in ladders(cells):
        first = rungs.iloc[0]
        base = first["tokens_per_s"] if first["status"] == "ok" else None
        for _, rung in rungs.iterrows():
            ok = rung["status"] == "ok"
            speedup = rung.get("tokens_per_s") / base if ok and base else None
            rows.append({
                "platform": platform, "model": model, "framework": framework,
                "rung": rung["method"],
                "batch": f"{rung['batch_size']:.0f}" if ok else shown(rung, None),
                "attention": rung.get("attention_kernel") or "-",
                "optimizer": rung.get("optimizer") or "-",
                "tokens/s": shown(rung, rung.get("tokens_per_s")),
                "speed-up": f"{speedup:.2f}x" if speedup else shown(rung, None),
                "MFU": shown(rung, rung.get("mfu"), percent=True),
                "HFU": shown(rung, rung.get("hfu"), percent=True),
                "memory (GB)": shown(rung, memory_metric(rung)[0]),
                "compile (s)": shown(rung, rung.get("compile_s")),
            })  # fmt: skip
    table = pd.DataFrame(rows)
    if len(table) and not (table["MFU"].str.endswith("%")).any():
        table = table.drop(columns=["MFU", "HFU"])  # no peak FLOP/s for the device (CPUs)
    note = (
        "every rung of a ladder at one batch (the first rung's largest, unless set), so every "
        "rung computes the same model FLOPs per token: 6 x matmul parameters + 12 x layers x "
        "sequence x hidden (MFU; HFU adds a forward for recomputation); speed-up: tokens/s over "
        "the first rung's; compile: what the warm-up steps took beyond a measured step; memory: "
        "peak allocated on a GPU, the process's peak resident set on a CPU"
    )
    return table, note


def ladder_figure(cells: pd.DataFrame, png: Path, pdf: Path) -> None:
    """Throughput per rung as bars with their speed-up, one panel per ladder."""
    found = list(ladders(cells))
    if not found:
        empty_figure("no ladder measured", png, pdf)
        return
    figure, axes = plt.subplots(1, len(found), figsize=(5.5 * len(found), 4.2), squeeze=False)
    for axis, (platform, model, framework, rungs) in zip(axes[0], found, strict=True):
        base = rungs.iloc[0]["tokens_per_s"] if rungs.iloc[0]["status"] == "ok" else None
        for x, (_, rung) in enumerate(rungs.iterrows()):
            if rung["status"] != "ok":
                axis.text(x, 0, rung["status"].upper(), ha="center", va="bottom",
                          color="firebrick", fontsize=8)  # fmt: skip
                continue
            bar = axis.bar(x, rung["tokens_per_s"], color=f"C{x}")
            label = f"{rung['tokens_per_s'] / base:.2f}x" if base else ""
            if pd.notna(rung.get("mfu")):
                label += f"\n{100 * rung['mfu']:.0f}% MFU"
            axis.bar_label(bar, labels=[label], fontsize=7)
        axis.set_xticks(range(len(rungs)), rungs["method"], rotation=30, ha="right", fontsize=7)
        axis.set_ylabel("throughput (tokens/s)")
        batch = rungs["batch_size"].dropna()
        at = f", batch {batch.iloc[0]:.0f}" if len(batch) else ""
        axis.set_title(f"{platform} / {model} / {framework}{at}", fontsize=9)
        axis.margins(y=0.2)  # room for the labels above the tallest bar
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle("optimization ladder: one feature more per rung, same batch")
    figure.tight_layout()
    save(figure, png, pdf)
