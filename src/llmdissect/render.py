"""Tables and figures from records: the aggregate rules call it on this run's records, and
`python -m llmdissect.render` calls it on any folder of records (reference/h100, a cluster's
results/records) without running anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .aggregate import (
    cells_frame,
    find_records,
    load_records,
    serving_requests_frame,
    top_operators_frame,
)
from .figures import idle_share_figure, method_tradeoff_figure, training_throughput_figure
from .profile_tables import (
    flash_table,
    module_table,
    operator_table,
    phase_table,
    recompute_table,
    top_operator_table,
)
from .serving_figures import SERVING_FIGURES, draw_serving_figure
from .tables import (
    hardware_table,
    scaling_table,
    serving_table,
    size_ratio_table,
    training_table,
    write_table,
)

PRETRAIN_TABLES = {
    "table2_frameworks": (
        "Table II: pre-training frameworks without ZeRO, batch 1 and the largest batch",
        dict(methods=["baseline"]),
    ),
    "table3_methods_b1": (
        "Table III: pre-training methods alone and combined, batch 1",
        dict(batches=["1"]),
    ),
    "table4_methods_max": (
        "Table IV: pre-training methods at the largest batch each allows",
        dict(batches=["max"]),
    ),
}
FINETUNE_TITLE = "Table IX: LoRA and QLoRA fine-tuning, batch 1 and the largest batch"
SIZE_RATIO_TITLE = (
    "Table IX check: fine-tuning throughput of 13B over 7B (the study reports 13B about 30% slower)"
)
SERVING_TITLE = "Figs. 6-10 in numbers: serving throughput and latency per engine"
SERVING_NOTE = (
    "requests: completed of sent; failed: requests that did not complete (truncated, timeout, "
    "connection, http error); truncated: streams that ended early; wrong length: completed "
    "responses whose token count differs from max_tokens; throughput over the makespan (first "
    "send to the last completed response's end); TTFT, TPOT, ITL and E2E as defined in the README"
)
PHASE_TITLE = "Table V: forward, backward and optimizer time per step, and idle share"
PHASE_NOTE = (
    "per profiled step; wall: the phase's range (on a GPU, its window on the device: from its "
    "start, or the previous phase's end, to the end of the last kernel it launched); busy: time "
    "with at least one device activity "
    "running (GPU kernels; on a CPU, the profiler's CPU operators); idle = 1 - busy / wall; "
    "profiler overhead: profiled over unprofiled median step time - 1"
)
PROFILE_TABLES = {
    "table6_modules": (
        module_table,
        "Table VI: time per module in forward and backward, per profiled step",
        "inclusive of the modules inside (a decoder layer holds attention, MLP, norms); kernels "
        "attributed through the profiler's launch and autograd links; share of the forward and "
        "backward activity; other: activity no module claims (the coverage figure)",
    ),
    "table7_recompute": (
        recompute_table,
        "Table VII: recomputation by batch size, phase times and idle share",
        "recompute: the forward of the decoder layers run again inside the backward",
    ),
    "table8_flash": (
        flash_table,
        "Table VIII: attention module forward and backward, FlashAttention against plain",
        "attention module including its projections; faster = 1 - flash / plain",
        "no cell was profiled both with and without flash (same model, framework and batch)",
    ),
    "operators": (
        operator_table,
        "Operator level: activity by category, and communication overlap",
        "share of the step's activity (GPU kernels; on a CPU, operators' self time); comm "
        "overlapped: share of collective time with computation running on another stream "
        "or thread",
    ),
}
TOP_OPERATORS_TITLE = "Operator level: the five operators that took the most time per cell"
HARDWARE_TITLE = "Table I: hardware of each platform, from the environment manifests"
SCALING_TITLE = "Fig. 4 data: scaling efficiency = throughput(N) / (N x throughput(1))"
FIGURES = {
    "pretrain_throughput": (training_throughput_figure, "pretrain"),
    "pretrain_method_tradeoff": (method_tradeoff_figure, "pretrain"),
    "finetune_throughput": (training_throughput_figure, "finetune"),
    "fig5_idle_share": (idle_share_figure, "profile"),
}
TABLE_NAMES = [
    "table1_hardware",
    *PRETRAIN_TABLES,
    "fig4_scaling",
    "table9_finetune",
    "table9_size_ratio",
    "serving",
    "table5_phases",
    *PROFILE_TABLES,
    "top_operators",
]


def render_tables(
    cells: pd.DataFrame, platforms: pd.DataFrame, top_operators: pd.DataFrame, out: Path
) -> list[Path]:
    """Every table as <out>/<name>.md, .csv and .tex; returns the stems written."""
    out = Path(out)
    write_table(platforms, out / "table1_hardware", HARDWARE_TITLE)
    for name, (title, filters) in PRETRAIN_TABLES.items():
        table, note = training_table(cells, "pretrain", **filters)
        write_table(table, out / name, title, note)
    write_table(scaling_table(cells, "pretrain"), out / "fig4_scaling", SCALING_TITLE)
    table, note = training_table(cells, "finetune")
    write_table(table, out / "table9_finetune", FINETUNE_TITLE, note)
    write_table(
        size_ratio_table(cells, "finetune"),
        out / "table9_size_ratio",
        SIZE_RATIO_TITLE,
        "every configuration measured with both model sizes on one platform",
        empty="no configuration was measured with both llama2-7b and llama2-13b",
    )
    write_table(serving_table(cells), out / "serving", SERVING_TITLE, SERVING_NOTE)
    write_table(phase_table(cells), out / "table5_phases", PHASE_TITLE, PHASE_NOTE)
    for name, (build, title, note, *empty) in PROFILE_TABLES.items():
        write_table(build(cells), out / name, title, note, *empty)
    write_table(top_operator_table(top_operators), out / "top_operators", TOP_OPERATORS_TITLE)
    return [out / name for name in TABLE_NAMES]


def render_folder(record_dirs: list[Path], out: Path) -> int:
    paths = find_records(record_dirs)
    if not paths:
        raise SystemExit(f"no result records under {', '.join(map(str, record_dirs))}")
    records = load_records(paths)
    cells = cells_frame(records)
    render_tables(cells, hardware_table(records), top_operators_frame(records), out / "tables")
    for name, (draw, stage) in FIGURES.items():
        draw(cells, stage, out / "figures" / f"{name}.png", out / "figures" / f"{name}.pdf")
    if (cells["stage"] == "serve").any():
        requests = serving_requests_frame(paths)
        for name in SERVING_FIGURES:
            png, pdf = (out / "figures" / f"{name}.{ext}" for ext in ("png", "pdf"))
            draw_serving_figure(name, cells, requests, png, pdf)
    return len(records)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmdissect.render",
        description="Render the study's tables and figures from folders of result records.",
    )
    parser.add_argument("records", nargs="+", type=Path, help="folders holding record JSON")
    parser.add_argument("--out", type=Path, required=True, help="writes tables/ and figures/ here")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.records if not p.is_dir()]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}")
    count = render_folder(args.records, args.out)
    print(f"{count} records -> {args.out}/tables, {args.out}/figures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
