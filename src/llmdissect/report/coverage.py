"""The coverage page: every table and figure of the study, in the paper's order, with our files,
the config section that makes them, the platforms with data, a status and its caveats."""

from __future__ import annotations

import pandas as pd

from .registry import FIGURES, TABLES, Figure, Table

# The study's items in the paper's order, the config section that measures each, and what a
# reader must know before comparing our numbers with the paper's
PAPER_ITEMS = {
    "Table I": ("every stage", "read from each record's environment manifest"),
    "Fig. 3": ("-", "a diagram of the method; the DAG (snakemake --dag) stands in for it"),
    "Table II": ("pretrain", "Megatron-core stands in for Megatron-LM"),
    "Fig. 4": ("pretrain (world_sizes)", "needs 2 or more GPUs; on a CPU, gloo processes"),
    "Table III": ("pretrain", "ZeRO shards nothing on one GPU: its memory cut needs several"),
    "Table IV": ("pretrain", "largest batch found by search, under the platform's memory cap"),
    "Table V": ("profile", "busy = GPU kernels running; on a CPU, the profiler's CPU operators"),
    "Fig. 5": ("profile", "idle share per phase; see Table V"),
    "Table VI": ("profile", "module layout inferred from the write-up's module-level section"),
    "Table VII": ("profile", "recomputation at two batches"),
    "Table VIII": ("profile", "batch inferred; attention module including its projections"),
    "Table IX": ("finetune", "70B's figure is for 8 consumer GPUs"),
    "Figs. 6-10": (
        "serve",
        "engines differ by platform: vLLM (and LMDeploy) on GPUs, CPU builds here",
    ),
    "operator level": ("profile", "from the abstract: kernel categories and communication overlap"),
}
# What the study measured on several GPUs: a row each, with the GPUs it needs and the config
# that runs it, so that no part is silently missing from a single-GPU set
MULTI_GPU_PARTS = [
    ("Fig. 4", "scaling efficiency, DeepSpeed + 4-bit, 7B, batch 2 per GPU",
     "2-8 GPUs (the study: 8)", "config/multigpu.yaml (world_sizes 1, 2, 4, 8)"),
    ("Tables III-IV", "ZeRO-2 / ZeRO-3 sharding and its memory cut", "2+ GPUs (the study: 8)",
     "config/multigpu.yaml"),
    ("Table II", "Megatron-core with tensor parallelism", "2+ GPUs (the study: 8)",
     "config/multigpu.yaml (megatron.tensor_parallel)"),
    ("Table V", "ZeRO's collectives and their overlap with compute", "2+ GPUs (the study: 8)",
     "config/multigpu.yaml (profile, world_sizes [8])"),
    ("Tables II-IV", "70B pre-training", "8 GPUs of 80 GB",
     "config/multigpu.yaml (ZeRO-3, tensor parallel 8)"),
    ("Table IX", "70B LoRA (138 GB of bf16 weights) and 70B with every method combined",
     "2+ GPUs of 80 GB (the study: 8 of 24 GB)", "config/paper.yaml"),
    ("Figs. 6-10", "70B serving", "4 GPUs of 80 GB", "config/multigpu.yaml (vllm-tp4)"),
]  # fmt: skip
BEYOND = "beyond the study"
FIGURE_ITEMS = {"Fig. 6", "Fig. 7", "Fig. 8", "Fig. 9", "Fig. 10"}


def item_of(spec: Table | Figure) -> str:
    """The paper item a table or figure belongs to (Figs. 6-10 are one item)."""
    if spec.reproduces in FIGURE_ITEMS:
        return "Figs. 6-10"
    for item in PAPER_ITEMS:
        # "Table IX's claim ..." is Table IX's; "Table II" is not Table I's
        if spec.reproduces == item or spec.reproduces.startswith((f"{item}'", f"{item} ")):
            return item
    return BEYOND


def in_paper_order(specs: list) -> list:
    """Tables or figures sorted as the paper presents its items; the rest after them."""
    rank = {item: i for i, item in enumerate([*PAPER_ITEMS, BEYOND])}
    return sorted(specs, key=lambda spec: rank[item_of(spec)])


def coverage_frame(frames: dict[str, pd.DataFrame], built: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per study item; `built`: each table by name, as rendered from `frames`."""
    cells = frames["cells"]
    rows = []
    for item, (section, caveat) in [*PAPER_ITEMS.items(), (BEYOND, ("", ""))]:
        tables = [t for t in TABLES if item_of(t) == item]
        figures = [f for f in FIGURES if item_of(f) == item]
        platforms = sorted(
            {str(p) for t in tables for p in built[t.name].get("platform", pd.Series()).dropna()}
        )
        if not tables and figures:  # drawn from the cells of its stage
            platforms = sorted({str(p) for p in stage_cells(item, cells)["platform"]})
        rows.append(
            {
                "study item": item,
                "our files": ", ".join(
                    [f"tables/{t.name}" for t in tables] + [f"figures/{f.name}" for f in figures]
                )
                or "-",
                "config": section or "pretrain / finetune / serve / ladder",
                "platforms with data": ", ".join(platforms) or "-",
                "status": status(item, tables, built, cells),
                "caveats": caveat or "-",
            }
        )
    return pd.DataFrame([*rows, *multi_gpu_rows(cells)])


def status(item: str, tables: list[Table], built: dict, cells: pd.DataFrame) -> str:
    """measured: its tables have rows and an ok cell of its stage exists; partial: rows, but
    every cell failed (OOM, n/a, error); wired only: nothing of it in these records."""
    if item == "Fig. 3":
        return "stand-in"
    if not tables:
        return (
            "measured"
            if len(stage_cells(item, cells))
            else "wired only: nothing of it in these records"
        )
    if tables and not any(len(built[t.name]) for t in tables):
        return "needs 2+ GPUs" if item == "Fig. 4" else "wired only: nothing of it in these records"
    measured = len(stage_cells(item, cells))
    if not measured:
        return "partial: every cell failed (OOM, n/a or error)"
    missing = missing_sides(item, cells)
    return f"partial: {missing}" if missing else "measured"


# What an item compares: it is measured only when each side ran (an ok cell somewhere).
COMPARED_CELLS = {
    "Table II": [("pretrain", "deepspeed", "baseline"), ("pretrain", "megatron", "baseline")],
}
COMPARED_ENGINES = {"Figs. 6-10": 2}  # the study compared three engines


def missing_sides(item: str, cells: pd.DataFrame) -> str:
    """What of the item's comparison did not run here, in words; empty when nothing is missing."""
    gaps = []
    for stage, framework, method in COMPARED_CELLS.get(item, []):
        side = cells[
            (cells["stage"] == stage)
            & (cells["framework"] == framework)
            & (cells["method"] == method)
        ]
        if not (side["status"] == "ok").any():
            failed = sorted(set(side["status"])) if len(side) else []
            gaps.append(f"{framework} {method} {'/'.join(failed) if failed else 'not measured'}")
    wanted = COMPARED_ENGINES.get(item)
    if wanted:
        served = stage_cells(item, cells)
        engines = sorted(set(served["framework"])) if len(served) else []
        if len(engines) < wanted:
            gaps.append(f"{len(engines)} engine ({', '.join(engines)}); the study compared three")
    return "; ".join(gaps)


def stage_cells(item: str, cells: pd.DataFrame) -> pd.DataFrame:
    """The ok cells of the stage an item's config section measures (all of them for Table I)."""
    if not len(cells):
        return cells.assign(platform=[])
    ok = cells[cells["status"] == "ok"]
    stage = PAPER_ITEMS.get(item, ("", ""))[0].split(" ")[0]
    return ok[ok["stage"] == stage] if stage in STAGES else ok


STAGES = ("pretrain", "finetune", "profile", "serve")


def multi_gpu_rows(cells: pd.DataFrame) -> list[dict]:
    """A coverage row per part of the study that needs several GPUs: the GPUs it needs and the
    config that runs it; measured where these records hold cells of several processes."""
    several = sorted(
        {str(p) for p in cells[cells["world_size"].astype(int) > 1]["platform"]}
    ) if len(cells) else []  # fmt: skip
    return [
        {
            "study item": f"{item}: {part}",
            "our files": "-",
            "config": config,
            "platforms with data": ", ".join(several) or "-",
            "status": f"needs {gpus}",
            "caveats": "not measurable on one GPU"
            if not several
            else "cells of several processes: see the item's table",
        }
        for item, part, gpus, config in MULTI_GPU_PARTS
    ]
