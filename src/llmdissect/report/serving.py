"""Serving: Figs. 6-10 in numbers (the serving table), throughput per engine, latency
distributions and percentiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import ticker

from .format import shown
from .plot import empty_figure, plt, save

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
    "J/output token": "joules_per_output_token",
    "MBU": "mbu",
    "USD/M output tokens": "usd_per_m_tokens",
    "served / offline": "served_over_offline",
}
# columns shown only where some record has them (an energy counter, a GPU, a platform price,
# an offline cell of the same engine)
OPTIONAL_SERVING_COLUMNS = ("J/output token", "MBU", "USD/M output tokens", "served / offline")
PRECISE_SERVING_COLUMNS = ("J/output token", "USD/M output tokens", "served / offline")


def served_over_offline(cells: pd.DataFrame) -> pd.Series:
    """Each served cell's output tokens/s over its engine's offline run of the same model on the
    same platform and GPUs (the engine's own ceiling without HTTP and client), where one ran."""
    serve = cells[cells["stage"] == "serve"]
    arrivals = serve.get("arrivals", pd.Series(None, index=serve.index, dtype=object))
    offline = serve[(arrivals == "offline") & (serve["status"] == "ok")]
    twin = ["platform", "model", "framework", "world_size"]
    ceiling = {
        tuple(r[k] for k in twin): r.get("output_tokens_per_s") for _, r in offline.iterrows()
    }
    ratios = {}
    for index, row in serve.iterrows():
        best = ceiling.get(tuple(row[k] for k in twin))
        served = row.get("output_tokens_per_s")
        if row.get("arrivals") != "offline" and best and pd.notna(served):
            ratios[index] = served / best
    return pd.Series(ratios, dtype=float)


def serving_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Figs. 6-10 in numbers: one row per platform x model x engine x workload."""
    rows = []
    ratios = served_over_offline(cells)
    for index, row in cells[cells["stage"] == "serve"].iterrows():
        row = row.copy()
        row["served_over_offline"] = ratios.get(index)
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
            precise = 3 if label in PRECISE_SERVING_COLUMNS else 0
            out[label] = shown(row, row.get(metric), percent=label == "MBU", significant=precise)
        rows.append(out)
    table = pd.DataFrame(rows)
    empty = [
        label
        for label in OPTIONAL_SERVING_COLUMNS
        if label in table and not table[label].str.contains(r"\d", regex=True).any()
    ]
    return table.drop(columns=empty)


LATENCY_LABELS = {
    "ttft": "time to first token (ms)",
    "tpot": "time per output token (ms)",
    "e2e": "end-to-end latency (ms)",
    "itl": "inter-token latency (ms)",
}


def serving_label(row) -> str:
    """platform / model / engine (x GPUs) / workload: one label per serving cell."""
    gpus = int(row["world_size"])
    engine = row["framework"] + (f" x{gpus}" if gpus > 1 else "")
    return f"{row['platform']} / {row['model']} / {engine} / {row['method']}"


def serving_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Serving cells of single loads (a sweep's levels have a figure of their own)."""
    cells = cells[cells["stage"] == "serve"]
    if "sweep_level" in cells:
        cells = cells[cells["sweep_level"].isna()]
    cells = cells.copy()
    cells["config"] = [serving_label(row) for _, row in cells.iterrows()]
    return cells


def throughput_figure(cells: pd.DataFrame, png: Path, pdf: Path) -> None:
    """Fig. 6: output and total tokens/s, engines side by side (one colour each) in a group per
    platform x model x workload; failed cells say why."""
    cells = serving_cells(cells)
    if cells.empty:
        return empty_figure("no serving cells measured", png, pdf)
    cells["group"] = [
        f"{r['platform']} / {r['model']} / {r['method']}" for _, r in cells.iterrows()
    ]
    cells["engine"] = [
        r["framework"] + (f" x{int(r['world_size'])}" if r["world_size"] > 1 else "")
        for _, r in cells.iterrows()
    ]
    groups = list(dict.fromkeys(cells["group"]))
    engines = list(dict.fromkeys(cells["engine"]))
    height = 0.8 / len(engines)
    rows = len(groups) * len(engines)
    figure, axes = plt.subplots(1, 2, figsize=(12, max(2.5, 0.3 * rows + 1.5)), sharey=True)
    metrics = [("output_tokens_per_s", "output tokens/s"), ("total_tokens_per_s", "total tokens/s")]
    for axis, (metric, label) in zip(axes, metrics, strict=True):
        for (group, engine), row in cells.groupby(["group", "engine"], sort=False):
            row = row.iloc[0]
            slot = engines.index(engine)
            y = groups.index(group) + (slot - (len(engines) - 1) / 2) * height
            value = row.get(metric)
            if row["status"] == "ok" and value is not None and pd.notna(value):
                bar = axis.barh(y, value, height * 0.9, color=f"C{slot}")
                axis.bar_label(bar, labels=[f" {value:,.0f}"], fontsize=7)
            else:
                axis.text(0, y, f" {engine}: {row['status'].upper()}", va="center", fontsize=7,
                          color="firebrick")  # fmt: skip
        axis.set_xlabel(label)
        axis.grid(axis="x", alpha=0.3)
        axis.margins(x=0.15)  # room for the value labels
        axis.set_yticks(range(len(groups)), groups, fontsize=8)
    axes[0].set_ylim(len(groups) - 0.5, -0.5)  # first group on top
    handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{i}") for i in range(len(engines))]
    axes[-1].legend(
        handles, engines, fontsize=8, title="engine", loc="upper left", bbox_to_anchor=(1.01, 1)
    )
    workloads = ", ".join(sorted(set(cells["method"])))
    figure.suptitle(f"Fig. 6: serving throughput ({workloads})", x=0.3)
    figure.tight_layout()
    save(figure, png, pdf)


def latency_cdf_figure(requests: pd.DataFrame, metric: str, png: Path, pdf: Path) -> None:
    """Figs. 7-9: the distribution of one latency over requests, a CDF per serving cell."""
    if requests.empty or requests[metric].dropna().empty:
        return empty_figure(f"no request traces with {metric.upper()}", png, pdf)
    figure, axis = plt.subplots(figsize=(7, 4))
    for index, (config, group) in enumerate(requests.groupby("config", sort=False)):
        values = np.sort(group[metric].dropna().to_numpy())
        if not len(values):
            continue
        share = np.arange(1, len(values) + 1) / len(values)
        axis.step(values, share, where="post", color=f"C{index}", label=config)
        for q, style in ((50, ":"), (99, "--")):
            axis.axvline(np.percentile(values, q), color=f"C{index}", ls=style, lw=0.8)
    spread = requests[metric].max() / max(requests[metric].min(), 1e-9)
    if spread > 30:  # several decades (a fast and a slow engine): a log axis keeps both readable
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:,.6g}"))
    axis.set_xlabel(LATENCY_LABELS[metric] + "; dotted: median, dashed: p99")
    axis.set_ylabel("share of requests")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    number = {"ttft": "Fig. 7: ", "tpot": "Fig. 8: ", "e2e": "Fig. 9: "}.get(metric, "")
    axis.set_title(f"{number}{metric.upper()} over every completed request")
    figure.tight_layout()
    save(figure, png, pdf)


def percentile_figure(cells: pd.DataFrame, png: Path, pdf: Path) -> None:
    """Fig. 10: median, p90 and p99 of TTFT, TPOT, ITL and E2E, one panel each."""
    cells = serving_cells(cells)
    latency = cells.get("ttft_median_ms", pd.Series(None, index=cells.index, dtype=float))
    cells = cells[(cells["status"] == "ok") & latency.notna()]  # offline cells have none
    if cells.empty:
        return empty_figure("no completed serving cells", png, pdf)
    figure, axes = plt.subplots(1, 4, figsize=(15, max(2.5, 0.45 * len(cells) + 1.3)), sharey=True)
    configs = list(cells["config"])
    stats = [("median", "C0"), ("p90", "C1"), ("p99", "C3")]
    for axis, metric in zip(axes, ["ttft", "tpot", "itl", "e2e"], strict=True):
        for offset, (stat, color) in enumerate(stats):
            values = cells.get(f"{metric}_{stat}_ms")
            if values is None:
                continue
            y = np.arange(len(configs)) + (offset - 1) * 0.27
            axis.barh(y, values.to_numpy(), 0.27, color=color, label=stat)
        axis.set_xlabel(LATENCY_LABELS[metric])
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(configs)), configs, fontsize=8)
    axes[0].invert_yaxis()
    axes[-1].legend(fontsize=8)
    figure.suptitle("Fig. 10: latency percentiles per serving cell", x=0.3)
    figure.tight_layout()
    save(figure, png, pdf)


def request_latency_figure(requests: pd.DataFrame, metric: str, png: Path, pdf: Path) -> None:
    """Figs. 7-9 from the per-request frame: each request labelled with its serving cell."""
    requests = requests.copy()
    requests["config"] = [serving_label(row) for _, row in requests.iterrows()]
    return latency_cdf_figure(requests, metric, png, pdf)


SWEEP_PANELS = [
    ("ttft_median_ms", "ttft_p99_ms", "time to first token (ms)"),
    ("tpot_median_ms", "tpot_p99_ms", "time per output token (ms)"),
]


def sweep_figure(cells: pd.DataFrame, png: Path, pdf: Path) -> None:
    """Beyond the study: output throughput against latency over a load sweep, one line per
    platform x model x engine (solid: median, dashed: p99), each point labelled with its level."""
    if "sweep_level" not in cells:
        return empty_figure("no load sweep measured", png, pdf)
    cells = cells[(cells["stage"] == "serve") & cells["sweep_level"].notna()]
    cells = cells[cells["status"] == "ok"].copy()
    if cells.empty:
        return empty_figure("no load sweep measured", png, pdf)
    cells["workload"] = cells["method"].str.split("@").str[0]
    figure, axes = plt.subplots(1, len(SWEEP_PANELS), figsize=(12, 4.5))
    keys = ["platform", "model", "framework", "workload"]
    for index, (names, group) in enumerate(cells.groupby(keys, sort=False)):
        group = group.sort_values("sweep_level")
        label = " / ".join(str(n) for n in names)
        for axis, (median, p99, _) in zip(axes, SWEEP_PANELS, strict=True):
            x = group["output_tokens_per_s"]
            axis.plot(x, group[median], "o-", color=f"C{index}", label=f"{label} median")
            axis.plot(x, group[p99], "s--", color=f"C{index}", alpha=0.6, label=f"{label} p99")
            for level, xi, yi in zip(group["sweep_level"], x, group[median], strict=True):
                axis.annotate(f"{level:g}", (xi, yi), fontsize=6, xytext=(3, -8),
                              textcoords="offset points")  # fmt: skip
    for axis, (_, _, ylabel) in zip(axes, SWEEP_PANELS, strict=True):
        axis.set_xlabel("output tokens/s")
        axis.set_ylabel(ylabel)
        axis.set_yscale("log")
        # plain numbers on every tick, major and minor (latencies span one or two decades)
        plain = ticker.FuncFormatter(lambda value, _: f"{value:,.4g}")
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_minor_formatter(plain)
        axis.tick_params(axis="y", which="minor", labelsize=7)
        axis.grid(alpha=0.3, which="both")
    axes[-1].legend(fontsize=7)
    figure.suptitle("Load sweep: throughput against latency (points: rate or concurrency)")
    figure.tight_layout()
    save(figure, png, pdf)
