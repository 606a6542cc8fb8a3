"""Pre-training and fine-tuning: Tables II-IV and IX, Fig. 4's data, and the throughput and
trade-off figures, from the per-cell frame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .format import shown, shown_spread
from .plot import empty_figure, plt, save


def memory_metric(row: pd.Series) -> tuple[float | None, str]:
    """Peak torch-allocated memory on a GPU; on the CPU the process's peak resident set."""
    allocated = row.get("peak_mem_allocated_gb")
    if allocated is not None and pd.notna(allocated):
        return float(allocated), "allocated"
    rss = row.get("peak_rss_gb")
    return (float(rss), "host RSS") if rss is not None and pd.notna(rss) else (None, "")


def training_table(
    cells: pd.DataFrame,
    stage: str,
    methods: list[str] | None = None,
    batches: list[str] | None = None,
) -> tuple[pd.DataFrame, str]:
    """Tables II-IV shape: one row per platform x model x framework x method x world size, a
    column group per batch (b=1, ..., max). Filters keep the listed methods and batches only."""
    cells = cells[cells["stage"] == stage]
    if methods is not None:
        cells = cells[cells["method"].isin(methods)]
    if batches is not None:
        cells = cells[cells["batch"].isin(batches)]
    rows, memory_kinds = [], set()
    if not len(cells):
        return pd.DataFrame(rows), ""
    keys = ["platform", "model", "framework", "method", "world_size"]
    for (platform, model, framework, method, world_size), group in cells.groupby(keys, sort=False):
        row = {"platform": platform, "model": model, "framework": framework, "method": method,
               "GPUs": int(world_size)}  # fmt: skip
        for batch, group_row in _by_batch(group).items():
            label = "max" if batch == "max" else f"b={batch}"
            memory, kind = memory_metric(group_row)
            memory_kinds.add(kind)
            if batch == "max":
                ok = group_row["status"] == "ok"
                row["max batch"] = max_batch_label(group_row) if ok else shown(group_row, None)
            row[f"{label} tokens/s"] = shown_spread(group_row, "tokens_per_s")
            row[f"{label} memory (GB)"] = shown(group_row, memory)
            row[f"{label} MFU"] = shown(group_row, group_row.get("mfu"), percent=True)
            row[f"{label} J/token"] = shown(
                group_row, group_row.get("joules_per_token"), significant=3
            )
            row[f"{label} USD/M tokens"] = shown(
                group_row, group_row.get("usd_per_m_tokens"), significant=3
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    # MFU needs a peak FLOP/s for the device, J/token an energy counter, cost a platform price:
    # where no cell has one, the column goes
    optional = (" MFU", " J/token", " USD/M tokens")
    table = table.drop(columns=columns_without_numbers(table, optional))
    kinds = " / ".join(sorted(k for k in memory_kinds if k))
    note = f"tokens/s over all GPUs, padding excluded; memory: peak {kinds} per process, GB"
    if "tokens_per_s_ci_low" in cells and cells["tokens_per_s_ci_low"].notna().any():
        note += "; repeated cells: median (95% interval of the mean over the repeats)"
    if any(c.endswith(" MFU") for c in table.columns):
        note += "; MFU: model FLOP/s over the GPUs' peak dense bf16 FLOP/s"
    if any(c.endswith(" J/token") for c in table.columns):
        note += "; J/token: the devices' energy counters over the measured steps, per token"
    if any(c.endswith(" USD/M tokens") for c in table.columns):
        note += "; USD/M tokens: the platform's price for the cell's GPUs (or machine) per hour"
    return table, note


def columns_without_numbers(table: pd.DataFrame, suffixes: tuple[str, ...]) -> list[str]:
    """Columns of the given kinds where no row holds a number (only '-', OOM, n/a ...)."""
    return [
        column
        for column in table.columns
        if column.endswith(suffixes) and not table[column].str.contains(r"\d", regex=True).any()
    ]


def scaling_table(cells: pd.DataFrame, stage: str) -> pd.DataFrame:
    """Scaling efficiency (Fig. 4): throughput(N) / (N x throughput(1)) for cells that differ
    only in their number of processes; cells without a measured 1-process twin are left out."""
    cells = cells[(cells["stage"] == stage) & (cells["status"] == "ok")]
    rows = []
    keys = ["platform", "model", "framework", "method", "batch"]
    for (platform, model, framework, method, batch), group in cells.groupby(keys, sort=False):
        single = group[group["world_size"] == 1]
        if single.empty or group["world_size"].nunique() < 2:
            continue
        base = float(single.iloc[0]["tokens_per_s"])
        for _, row in group.sort_values("world_size").iterrows():
            n = int(row["world_size"])
            rows.append({
                "platform": platform, "model": model, "framework": framework, "method": method,
                "batch per GPU": batch, "GPUs": n, "tokens/s": round(float(row["tokens_per_s"]), 1),
                "scaling efficiency": round(float(row["tokens_per_s"]) / (n * base), 3),
            })  # fmt: skip
    return pd.DataFrame(rows)


def size_ratio_table(
    cells: pd.DataFrame, stage: str, small: str = "llama2-7b", large: str = "llama2-13b"
) -> pd.DataFrame:
    """Throughput of the larger model over the smaller one's, for every configuration measured
    on both (the study: 13B fine-tunes about 30% slower than 7B)."""
    ok = cells[(cells["stage"] == stage) & (cells["status"] == "ok")]
    rows = []
    keys = ["platform", "framework", "method", "world_size", "batch"]
    for (platform, framework, method, world_size, batch), group in ok.groupby(keys, sort=False):
        speed = dict(zip(group["model"], group["tokens_per_s"], strict=True))
        if small not in speed or large not in speed:
            continue
        ratio = speed[large] / speed[small]
        rows.append({
            "platform": platform, "framework": framework, "method": method, "GPUs": int(world_size),
            "batch": batch, f"{small} tokens/s": round(speed[small], 1),
            f"{large} tokens/s": round(speed[large], 1), f"{large} / {small}": round(ratio, 3),
            "slower by": f"{100 * (1 - ratio):.0f}%",
        })  # fmt: skip
    return pd.DataFrame(rows)


def max_batch_label(row: pd.Series) -> str:
    """The batch found; '>=' when the search stopped at its limit with the limit still fitting."""
    prefix = ">=" if bool(row.get("search_hit_limit", False)) else ""
    return f"{prefix}{int(row['batch_size'])}"


def _by_batch(group: pd.DataFrame) -> dict:
    ordered = sorted(group["batch"], key=lambda b: (b == "max", int(b) if b != "max" else 0))
    return {b: group[group["batch"] == b].iloc[0] for b in ordered}


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
    labelled = []  # (axis, points, labels) to place once the layout is final
    for axis, model in zip(axes[0], models, strict=True):
        subset = cells[cells["model"] == model]
        points, labels = [], []
        for marker, (batch_mode, group) in zip("os^v", subset.groupby("batch"), strict=False):
            memory = [memory_metric(row)[0] for _, row in group.iterrows()]
            axis.scatter(memory, group["tokens_per_s"], marker=marker, label=f"batch {batch_mode}")
            for x, (_, row) in zip(memory, group.iterrows(), strict=True):
                label = f"{row['framework']}:{row['method']}"
                if int(row.get("world_size", 1)) > 1:
                    label += f" x{int(row['world_size'])}"
                points.append((x, row["tokens_per_s"]))
                labels.append(label)
        labelled.append((axis, points, labels))
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
    for axis, points, labels in labelled:
        place_labels(axis, points, labels)
    save(figure, png, pdf)


def place_labels(axis, points: list, labels: list[str], fontsize: float = 6) -> None:
    """Each point's label beside it, moved up (with a leader line) until it overlaps no label
    placed before it: points that sit together (the largest-batch cells) stay readable."""
    axis.figure.canvas.draw()  # the axis limits and layout are final only once drawn
    renderer = axis.figure.canvas.get_renderer()
    placed = []
    order = sorted(range(len(points)), key=lambda i: axis.transData.transform(points[i])[1])
    for i in order:
        for step in range(40):  # the text alone decides where it fits
            rise = 3 + step * (fontsize + 1.5)
            note = axis.annotate(labels[i], points[i], xytext=(3, rise), textcoords="offset points",
                                 fontsize=fontsize)  # fmt: skip
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
            note.remove()
        if step:  # moved: a leader line back to its point
            note.remove()
            axis.annotate(labels[i], points[i], xytext=(3, rise), textcoords="offset points",
                          fontsize=fontsize, arrowprops={"arrowstyle": "-", "lw": 0.4,
                                                         "color": "grey"})  # fmt: skip
        placed.append(box)


def scaling_figure(cells: pd.DataFrame, stage: str, png: Path, pdf: Path) -> None:
    """Fig. 4: scaling efficiency against the number of GPUs (processes), one line per platform
    x model x configuration, the interconnect the records name in the label; ideal = 1."""
    table = scaling_table(cells, stage)
    if table.empty:
        return empty_figure("Fig. 4: no cell measured at several world sizes", png, pdf)
    links = dict(zip(cells["platform"], cells["interconnect"], strict=True))
    figure, axis = plt.subplots(figsize=(7, 4.5))
    keys = ["platform", "model", "framework", "method", "batch per GPU"]
    for index, (names, group) in enumerate(table.groupby(keys, sort=False)):
        platform, model, framework, method, batch = names
        link = links.get(platform)
        label = f"{platform} ({link})" if isinstance(link, str) else platform
        axis.plot(group["GPUs"], group["scaling efficiency"], "o-", color=f"C{index}",
                  label=f"{label} / {model} / {framework} {method} b={batch}")  # fmt: skip
        for n, value in zip(group["GPUs"], group["scaling efficiency"], strict=True):
            axis.annotate(f"{value:.0%}", (n, value), fontsize=7, xytext=(3, 4),
                          textcoords="offset points")  # fmt: skip
    axis.axhline(1.0, color="grey", ls=":", lw=1, label="linear")
    axis.set_xticks(sorted(set(table["GPUs"])))
    axis.set_xlabel("GPUs (processes)")
    axis.set_ylabel("throughput(N) / (N x throughput(1))")
    axis.set_ylim(0, max(1.1, table["scaling efficiency"].max() + 0.1))  # room for the labels
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    axis.set_title("Fig. 4: scaling efficiency")
    figure.tight_layout()
    save(figure, png, pdf)
