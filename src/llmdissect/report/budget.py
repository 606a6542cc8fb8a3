"""Where a study's device time went: per cell and per stage, the seconds spent searching for the
largest batch, starting an engine and measuring, and the GPU time they held."""

from __future__ import annotations

import pandas as pd

STAGE_ORDER = ["pretrain", "finetune", "profile", "ladder", "serve"]


def number(value, digits: int) -> str:
    if value is None or value == "" or pd.isna(value):
        return "-"
    return f"{value:,.{digits}f}"


def gpus_of(row) -> int:
    """GPUs the cell held: its processes (or tensor-parallel engine), on a GPU platform."""
    label = str(row.get("gpu") or "")
    return int(row["world_size"]) if label not in ("", "cpu", "-") else 0


def cell_times(cells: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, row in cells.iterrows():
        total = row.get("duration_s")
        if pd.isna(total):
            continue  # a sweep's later levels: the engine's time is on its first level
        search = row.get("search_s")
        start = row.get("startup_s") if row["stage"] == "serve" else None
        spent = sum(v for v in (search, start) if pd.notna(v))
        gpus = gpus_of(row)
        rows.append(
            {
                "platform": row["platform"],
                "stage": row["stage"],
                "cell": row["key"].split("/", 2)[2].split("@")[0],
                "status": row["status"],
                "GPUs": gpus,
                "search probes": row.get("search_probes"),
                "searching (s)": search,
                "engine start (s)": start,
                "measuring (s)": total - spent,
                "total (s)": total,
                "GPU time (min)": total * gpus / 60 if gpus else None,
            }
        )
    return pd.DataFrame(rows)


def gpu_time_table(cells: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    times = cell_times(cells)
    if times.empty:
        return times, ""
    order = {s: i for i, s in enumerate(STAGE_ORDER)}
    times = times.sort_values(
        ["platform", "stage", "cell"], key=lambda c: c.map(order) if c.name == "stage" else c
    )
    rows = []
    for platform, per_platform in times.groupby("platform", sort=False):
        for stage, group in per_platform.groupby("stage", sort=False):
            rows += group.to_dict("records")
            rows.append(subtotal(platform, f"{stage}: all", group))
        rows.append(subtotal(platform, "all stages", per_platform))
    table = pd.DataFrame(rows)
    for column in ("searching (s)", "engine start (s)", "measuring (s)", "total (s)"):
        table[column] = table[column].map(lambda v: number(v, 0))
    table["GPU time (min)"] = table["GPU time (min)"].map(lambda v: number(v, 1))
    table["search probes"] = table["search probes"].map(lambda v: number(v, 0))
    note = (
        "each cell's wall time from its record (its processes, searches and engine start "
        "included); searching: the largest-batch probes (records before the predicted search did "
        "not time them: '-'); GPU time: wall time x GPUs held; 'all' rows add up the rows above"
    )
    return table, note


def subtotal(platform: str, label: str, group: pd.DataFrame) -> dict:
    def total(column):
        values = group[column].dropna()
        return values.sum() if len(values) else None

    return {
        "platform": platform,
        "stage": label,
        "cell": f"{len(group)} cells",
        "status": "",
        "GPUs": "",
        "search probes": total("search probes"),
        "searching (s)": total("searching (s)"),
        "engine start (s)": total("engine start (s)"),
        "measuring (s)": total("measuring (s)"),
        "total (s)": total("total (s)"),
        "GPU time (min)": total("GPU time (min)"),
    }
