"""Profiling: Tables V-VIII and the operator level from profiled cells (one row per cell) and
their top operators (one row per cell and operator), and Fig. 5."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..methods import parse_method
from ..profiling.module_marks import ROLES
from ..profiling.modules import KINDS
from ..profiling.operators import CATEGORIES
from .format import shown, shown_batch, shown_spread
from .plot import empty_figure, plt, save

PHASE_LABELS = {"step": "whole step", "forward": "forward", "backward": "backward",
                "optimizer": "optimizer"}  # fmt: skip
MODULE_LABELS = {
    "decoder_stack": "decoder stack (embedding, layers, masks, final norm)",
    "embedding": "Embedding",
    "decoder_layer": "decoder layer (all of it)",
    "attention": "attention (with its projections)",
    "core_attention": "core attention",
    "mlp": "MLP (with its projections)",
    "rmsnorm": "RMSNorm",
    "linear": "Linear (projections)",
    "silu": "SiLU",
    "rotary": "rotary embedding",
    "lm_head": "LM head",
    "loss": "loss",
    "parameter_gradients": "parameter gradients (accumulate, reduce, flatten)",
}


def _profiled(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[cells["stage"] == "profile"]


def _cell_columns(row: pd.Series) -> dict:
    return {
        "platform": row["platform"],
        "model": row["model"],
        "framework": row["framework"],
        "method": row["method"],
        "world": f"{row['world_size']:.0f}" if pd.notna(row.get("world_size")) else "-",
        "batch": shown_batch(row),
    }


def _rows_per_cell(cells: pd.DataFrame, label: str, status_column: str, rows_of) -> pd.DataFrame:
    """The rows `rows_of(row)` gives for each measured profiled cell, after the cell's own
    columns; a cell that was not measured gets one row that shows its status."""
    rows = []
    for _, row in _profiled(cells).iterrows():
        base = _cell_columns(row)
        if row["status"] != "ok":
            rows.append({**base, label: "-", status_column: shown(row, None)})
            continue
        rows += [{**base, **out} for out in rows_of(row)]
    return pd.DataFrame(rows)


def phase_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Table V: per profiled cell and phase, wall and busy time per step and the idle share."""

    def phases(row):
        for name, label in PHASE_LABELS.items():
            overhead = row.get("profiler_overhead") if name == "step" else None
            yield {
                "phase": label,
                "wall (ms)": shown(row, row.get(f"{name}_wall_ms")),
                "busy (ms)": shown(row, row.get(f"{name}_busy_ms")),
                "idle": shown(row, row.get(f"{name}_idle_share"), percent=True),
                "profiler overhead": shown(row, overhead, percent=True) if name == "step" else "",
            }

    return _rows_per_cell(cells, "phase", "wall (ms)", phases)


def module_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Table VI: per profiled cell, each module's forward and backward time per step
    (inclusive of the modules inside it), and what no module claims ("other")."""

    def modules(row):
        activity = row.get("module_activity_ms")
        for role in ROLES:
            times = [row.get(f"module_{role}_{kind}_ms") for kind in KINDS]
            if all(v is None or pd.isna(v) for v in times):
                continue
            forward, backward, recompute = times
            yield {
                "module": MODULE_LABELS[role],
                "forward (ms)": shown(row, forward),
                "backward (ms)": shown(row, backward),
                "recompute (ms)": shown(row, recompute),
                "share of activity": shown(
                    row, _sum(*times) / activity if activity else None, percent=True
                ),
            }
        yield {
            "module": "other (no module)",
            "share of activity": shown(row, row.get("module_other_share"), percent=True),
        }

    return _rows_per_cell(cells, "module", "forward (ms)", modules)


def _sum(*values) -> float:
    return sum(float(v) for v in values if v is not None and pd.notna(v))


def recompute_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Table VII: profiled cells with recomputation, by batch: phase times, the recomputed
    forward inside the backward, and the idle share of each phase."""
    rows = []
    profiled = _profiled(cells)
    for _, row in profiled.iterrows():
        if "recompute" not in parse_method(row["method"]):
            continue
        out = _cell_columns(row)
        out["tokens/s"] = shown(row, row.get("tokens_per_s"))
        out["forward (ms)"] = shown(row, row.get("forward_wall_ms"))
        out["backward (ms)"] = shown(row, row.get("backward_wall_ms"))
        out["of it recompute (ms)"] = shown(row, row.get("module_decoder_layer_recompute_ms"))
        out["optimizer (ms)"] = shown(row, row.get("optimizer_wall_ms"))
        for phase in ("forward", "backward", "optimizer"):
            out[f"{phase} idle"] = shown(row, row.get(f"{phase}_idle_share"), percent=True)
        rows.append(out)
    return pd.DataFrame(rows)


def flash_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Table VIII: the attention module with FlashAttention against the same cell without it:
    forward and backward time per step and how much faster ("faster" = 1 - flash / plain)."""
    profiled = _profiled(cells)
    rows = []
    for plain, flash in flash_twins(profiled[profiled["status"] == "ok"]):
        out = _cell_columns(flash)
        out["method"] = f"{plain['method']} -> {flash['method']}"
        for phase in ("forward", "backward"):
            metric = f"module_attention_{phase}_ms"
            before, after = plain.get(metric), flash.get(metric)
            out[f"{phase} plain (ms)"] = shown_spread(plain, metric)
            out[f"{phase} flash (ms)"] = shown_spread(flash, metric)
            faster = 1 - after / before if before and pd.notna(after) else None
            out[f"{phase} faster"] = shown(flash, faster, percent=True)
            span = speedup_interval(plain, flash, metric)
            if span:
                noise = " within noise" if span[0] <= 0 <= span[1] else ""
                out[f"{phase} faster"] += f" ({span[0]:.1%} to {span[1]:.1%}{noise})"
        rows.append(out)
    return pd.DataFrame(rows)


def flash_twins(profiled: pd.DataFrame):
    """Each profiled FlashAttention cell with its plain twin: same platform, model, framework,
    world size and batch, and the same features less flash."""
    for _, flash in profiled.iterrows():
        features = parse_method(flash["method"])
        if "flash" not in features:
            continue
        match = profiled[
            (profiled["platform"] == flash["platform"])
            & (profiled["model"] == flash["model"])
            & (profiled["framework"] == flash["framework"])
            & (profiled["world_size"] == flash["world_size"])
            & (profiled["batch"] == flash["batch"])
            & profiled["method"].map(parse_method).isin([features - {"flash"}])
        ]
        if not match.empty:
            yield match.iloc[0], flash


def speedup_interval(plain: pd.Series, fast: pd.Series, metric: str) -> tuple | None:
    """Bounds of 1 - fast / plain from both cells' 95% intervals over repeats (the widest
    the two allow), or None without repeats."""
    bounds = [row.get(f"{metric}_ci_{side}") for row in (plain, fast) for side in ("low", "high")]
    if any(b is None or pd.isna(b) for b in bounds) or bounds[0] <= 0:
        return None
    plain_low, plain_high, fast_low, fast_high = bounds
    return 1 - fast_high / plain_low, 1 - fast_low / plain_high


def operator_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Operator level: activity per category as a share of the step's, and communication
    time with the share of it that overlaps computation."""
    rows = []
    for _, row in _profiled(cells).iterrows():
        out = _cell_columns(row)
        total = row.get("op_total_ms")
        out["activity (ms)"] = shown(row, total)
        for category in CATEGORIES:
            value = row.get(f"op_{category}_ms")
            share = value / total if total and value is not None and pd.notna(value) else None
            out[category] = shown(row, share, percent=True)
        out["comm (ms)"] = shown(row, row.get("comm_ms"))
        out["comm overlapped"] = shown(row, row.get("comm_overlap_share"), percent=True)
        rows.append(out)
    return pd.DataFrame(rows)


def top_operator_table(top: pd.DataFrame, count: int = 5) -> pd.DataFrame:
    """The operators (kernels on a GPU) that took the most time, per profiled cell."""
    rows = []
    for _, row in top[top["rank"] <= count].iterrows():
        rows.append(
            {
                "platform": row["platform"],
                "model": row["model"],
                "framework": row["framework"],
                "method": row["method"],
                "world": row["world_size"],
                "batch": row["batch"],
                "rank": row["rank"],
                "operator": str(row["name"])[:80],
                "category": row["category"],
                "ms per step": f"{row['ms_per_step']:.3f}",
                "share": f"{100 * row['share']:.1f}%" if pd.notna(row["share"]) else "-",
            }
        )
    return pd.DataFrame(rows)


def idle_share_figure(cells: pd.DataFrame, stage: str, png: Path, pdf: Path) -> None:
    """Fig. 5: the idle share of each phase per profiled cell, one bar per phase."""
    cells = cells[(cells["stage"] == stage) & (cells["status"] == "ok")].copy()
    phases = ["step", "forward", "backward", "optimizer"]
    if cells.empty or not any(f"{p}_idle_share" in cells for p in phases):
        return empty_figure("no profiled cells", png, pdf)
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
