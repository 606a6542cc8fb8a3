"""Result records -> tidy data: one row per cell and metric, plus one row per cell."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..hardware import memory_bandwidth_gbs
from ..records import read_record
from ..serving.bandwidth import decode_bandwidth

CELL_FIELDS = ["stage", "platform", "model", "framework", "method", "world_size", "batch"]
CELL_COLUMNS = ["key", *CELL_FIELDS, "status", "reason"]


def find_records(folders: list[Path]) -> list[Path]:
    """Every record under the given folders (imported results, reference/<platform>/ ...)."""
    return sorted(p for folder in folders for p in Path(folder).rglob("*.json") if is_record(p))


NOT_RECORDS = {"work", "benchmarks"}  # probe scratch files; benchmark outputs beside records


def is_record(path: Path) -> bool:
    return not path.name.startswith(".") and not NOT_RECORDS & set(path.parts)


def load_records(paths: list[Path]) -> list[dict]:
    records = {}
    for path in paths:
        record = read_record(Path(path))
        records[record["key"]] = record  # a later folder's record of the same cell wins
    return list(records.values())


def per_level(records: list[dict]) -> list[dict]:
    """A load sweep's record as one record per level (key and method `<name>@<level>`, the
    level's metrics beside the engine's start time); other records as they are."""
    expanded = []
    for record in records:
        levels = (record.get("metrics") or {}).get("levels")
        if not levels:
            expanded.append(record)
            continue
        for i, part in enumerate(levels):
            level = part["level"]
            metrics = {k: v for k, v in record["metrics"].items() if k != "levels"}
            metrics.update({k: v for k, v in part.items() if k != "level"}, sweep_level=level)
            cell = dict(record["cell"], method=f"{record['cell']['method']}@{level:g}")
            # the engine ran once for every level: its time belongs to the first one
            duration = record.get("duration_s") if i == 0 else None
            expanded.append(
                dict(
                    record,
                    key=f"{record['key']}@{level:g}",
                    cell=cell,
                    metrics=metrics,
                    duration_s=duration,
                )
            )
    return expanded


def cell_row(record: dict) -> dict:
    cell = record["cell"]
    row = {name: cell.get(name) for name in CELL_FIELDS}
    row["world_size"] = int(cell.get("world_size") or 1)  # one process unless the cell says more
    row.update(key=record["key"], status=record["status"], reason=record["reason"])
    return row


def tidy_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for record in per_level(records):
        base = cell_row(record)
        metrics = record["metrics"] or {}
        if not metrics:
            rows.append({**base, "metric": None, "value": None})
        for metric, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({**base, "metric": metric, "value": float(value)})
    frame = pd.DataFrame(rows, columns=[*CELL_COLUMNS, "metric", "value"])
    return frame.sort_values(["key", "metric"], na_position="first").reset_index(drop=True)


def cells_frame(records: list[dict], rates: dict | None = None) -> pd.DataFrame:
    """One row per cell: its key fields, status and every numeric metric as a column, plus what
    the report derives: decode bandwidth use of serving cells, cost per million tokens where the
    platform has a price (`rates`: per platform, the config's bandwidth and price keys)."""
    rows = []
    for record in per_level(records):
        row = cell_row(record)
        row["batch_size"] = (record["metrics"] or {}).get("batch_size")
        search = (record.get("settings") or {}).get("batch_search") or {}
        row["search_hit_limit"] = bool(search.get("hit_limit"))  # the true largest may be larger
        row["duration_s"] = record.get("duration_s")
        row["search_probes"] = len(search["probes"]) if search.get("probes") else None
        row["search_s"] = search.get("seconds")  # older records did not time their probes
        row.update(
            {
                k: v
                for k, v in (record["metrics"] or {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
        )
        row["gpu"] = gpu_label(record["environment"])
        accelerators = record["environment"].get("accelerators") or {}
        row["interconnect"] = accelerators.get("interconnect") if accelerators.get("gpus") else None
        row.update(what_ran(record.get("settings") or {}))
        row["ladder_rung"] = (record.get("settings") or {}).get("ladder_rung")
        row["arrivals"] = ((record.get("settings") or {}).get("workload") or {}).get("arrivals")
        row.update(derived_metrics(record, row, (rates or {}).get(row["platform"]) or {}))
        rows.append(row)
    if not rows:
        columns = ["batch_size", "search_hit_limit", "duration_s", "search_probes", "search_s",
                   "gpu", "interconnect", "attention_kernel", "optimizer"]  # fmt: skip
        empty = [*CELL_COLUMNS, *columns, "compile_mode", "ladder_rung", "arrivals"]
        return pd.DataFrame(columns=empty)
    frame = pd.DataFrame(rows)
    return frame.sort_values("key", key=lambda keys: keys.map(natural_order)).reset_index(drop=True)


def derived_metrics(record: dict, row: dict, rates: dict) -> dict:
    """MBU for serving cells; USD per million tokens (trained, or served output) where priced."""
    derived = {}
    if row["stage"] == "serve":
        gpus = (record["environment"].get("accelerators") or {}).get("gpus") or []
        bandwidth = rates.get("memory_bandwidth_gbs") or (
            memory_bandwidth_gbs(gpus[0]["name"]) if gpus else None
        )
        derived.update(decode_bandwidth(record, bandwidth))
    speed = row.get("output_tokens_per_s" if row["stage"] == "serve" else "tokens_per_s")
    if "price_per_gpu_hour" in rates:
        hourly = rates["price_per_gpu_hour"] * row["world_size"]
    else:
        hourly = rates.get("price_per_hour")
    if hourly is not None and speed and record["status"] == "ok":
        derived["usd_per_m_tokens"] = round(hourly / 3600 / speed * 1e6, 4)
    return derived


TOP_OPERATOR_COLUMNS = ["name", "category", "ms_per_step", "calls_per_step", "share"]


def top_operators_frame(records: list[dict]) -> pd.DataFrame:
    """One row per profiled cell and top operator (kernel on a GPU), in the record's order."""
    rows = []
    for record in records:
        for rank, entry in enumerate((record["metrics"] or {}).get("top_operators") or [], 1):
            rows.append({**cell_row(record), "rank": rank, **entry})
    columns = [*CELL_COLUMNS, "rank", *TOP_OPERATOR_COLUMNS]
    return pd.DataFrame(rows, columns=columns)


def what_ran(settings: dict) -> dict:
    """The attention kernel, optimizer and compile mode a training record says it ran with."""
    compiled = settings.get("compile")
    return {
        "attention_kernel": settings.get("attention_kernel") or settings.get("attention"),
        "optimizer": settings.get("optimizer"),
        "compile_mode": compiled.get("mode") if isinstance(compiled, dict) else None,
    }


def natural_order(text: str) -> tuple:
    """Numbers compare as numbers, so llama2-7b comes before llama2-13b and b8 before b16."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def gpu_label(environment: dict) -> str:
    if environment.get("recorded_by"):
        return "-"  # not the platform's machine: the cell's job never reported back
    gpus = (environment.get("accelerators") or {}).get("gpus") or []
    if not gpus:
        return "cpu"
    return f"{len(gpus)}x {gpus[0]['name']}"


def serving_requests_frame(record_paths: list[Path]) -> pd.DataFrame:
    """One row per completed request of every serving record whose traces lie beside it."""
    from ..serving.metrics import request_rows
    from ..serving.trace import read_traces, trace_path_of

    chosen = {}
    for path in record_paths:  # a later folder's record of the same cell wins, as in the tables
        record = read_record(Path(path))
        chosen[record["key"]] = (path, record)
    frames = []
    for key in sorted(chosen, key=natural_order):
        path, record = chosen[key]
        trace_path = trace_path_of(Path(path))
        if record["cell"]["stage"] != "serve" or record["status"] != "ok" or not trace_path:
            continue
        if (record["metrics"] or {}).get("levels"):
            continue  # a sweep's requests are drawn by level in the sweep figure, not Figs. 7-9
        rows = pd.DataFrame(request_rows(read_traces(trace_path)))
        for name, value in cell_row(record).items():
            rows[name] = value
        frames.append(rows)
    columns = [*CELL_COLUMNS, "request", "output_tokens", "ttft", "tpot", "e2e"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def read_tidy(path: Path) -> pd.DataFrame:
    """A tidy frame as tidying wrote it: Parquet, or CSV (platforms.csv)."""
    path = Path(path)
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
