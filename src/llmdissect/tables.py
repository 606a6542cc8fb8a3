"""Every table of the study from tidy data, written as Markdown, CSV and LaTeX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

STATUS_LABELS = {"oom": "OOM", "infeasible": "n/a", "error": "error"}


def memory_metric(row: pd.Series) -> tuple[float | None, str]:
    """Peak torch-allocated memory on a GPU; on the CPU the process's peak resident set."""
    allocated = row.get("peak_mem_allocated_gb")
    if allocated is not None and pd.notna(allocated):
        return float(allocated), "allocated"
    rss = row.get("peak_rss_gb")
    return (float(rss), "host RSS") if rss is not None and pd.notna(rss) else (None, "")


def shown(row: pd.Series | None, value, percent: bool = False) -> str:
    """A table cell: the value, or why there is none (OOM, n/a, error), never a blank."""
    if row is None:
        return "not run"
    if row["status"] != "ok":
        return STATUS_LABELS[row["status"]]
    if value is None or pd.isna(value):
        return "-"
    if percent:
        return f"{100 * value:.1f}%"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


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
            row[f"{label} tokens/s"] = shown(group_row, group_row.get("tokens_per_s"))
            row[f"{label} memory (GB)"] = shown(group_row, memory)
            row[f"{label} MFU"] = shown(group_row, group_row.get("mfu"), percent=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    # MFU needs a peak FLOP/s for the device; where no cell has one (CPUs), drop the column
    without_mfu = [
        c for c in table.columns if c.endswith(" MFU") and not table[c].str.endswith("%").any()
    ]
    table = table.drop(columns=without_mfu)
    kinds = " / ".join(sorted(k for k in memory_kinds if k))
    note = f"tokens/s over all GPUs, padding excluded; memory: peak {kinds} per process, GB"
    if any(c.endswith(" MFU") for c in table.columns):
        note += "; MFU: model FLOP/s over the GPUs' peak dense bf16 FLOP/s"
    return table, note


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


def to_markdown(frame: pd.DataFrame) -> str:
    headers = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for values in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_text(v) for v in values) + " |")
    return "\n".join(lines) + "\n"


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    columns = "l" * len(frame.columns)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_latex_escape(caption)}}}",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\hline",
        " & ".join(_latex_escape(str(c)) for c in frame.columns) + " \\\\",
        "\\hline",
    ]
    for values in frame.itertuples(index=False):
        lines.append(" & ".join(_latex_escape(_text(v)) for v in values) + " \\\\")
    lines += ["\\hline", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    frame: pd.DataFrame, stem: Path, title: str, note: str = "", empty: str = "no cells measured"
) -> None:
    """stem.md, stem.csv and stem.tex; an empty table still says why it is empty."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(stem.with_suffix(".csv"), index=False)
    body = to_markdown(frame) if len(frame) else f"_{empty}_\n"
    stem.with_suffix(".md").write_text(f"### {title}\n\n{body}" + (f"\n{note}\n" if note else ""))
    stem.with_suffix(".tex").write_text(to_latex(frame, f"{title}. {note}".strip(". ")))


def _text(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return str(value)


LATEX_SPECIALS = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "_": "\\_",
    "#": "\\#",
    "$": "\\$",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
}


def _latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(char, char) for char in text)


SERVING_COLUMNS = {
    "output tokens/s": "output_tokens_per_s",
    "total tokens/s": "total_tokens_per_s",
    "requests/s": "requests_per_s",
    "TTFT median (ms)": "ttft_median_ms",
    "TTFT p99 (ms)": "ttft_p99_ms",
    "TPOT median (ms)": "tpot_median_ms",
    "TPOT p99 (ms)": "tpot_p99_ms",
    "ITL p99 (ms)": "itl_p99_ms",
    "E2E median (ms)": "e2e_median_ms",
    "E2E p99 (ms)": "e2e_p99_ms",
}


def serving_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Figs. 6-10 in numbers: one row per platform x model x engine x workload."""
    rows = []
    for _, row in cells[cells["stage"] == "serve"].iterrows():
        # counts wherever the load ran: an error record says how many of its requests failed
        ran = pd.notna(row.get("requests"))
        out = {
            "platform": row["platform"],
            "model": row["model"],
            "engine": row["framework"],
            "workload": row["method"],
            "GPUs": row["world_size"],
            "requests": f"{row.get('completed', 0):.0f} of {row.get('requests', 0):.0f}"
            if ran
            else shown(row, None),  # completed of sent
        }
        # truncated: a kind of failed ("-" in records older than the count)
        counts = {
            "failed": "failed",
            "truncated": "truncated",
            "wrong length": "token_count_mismatches",
        }
        for label, metric in counts.items():
            value = row.get(metric)
            out[label] = f"{value:.0f}" if ran and pd.notna(value) else "-"
        for label, metric in SERVING_COLUMNS.items():
            out[label] = shown(row, row.get(metric))
        rows.append(out)
    return pd.DataFrame(rows)


def shown_batch(row: pd.Series) -> str:
    size = row.get("batch_size")
    if row["batch"] == "max":
        return f"max ({size:.0f})" if size is not None and pd.notna(size) else "max"
    return str(row["batch"])
