"""Every table and figure of the study, in one place: render (the CLI and the render_tables
rule), the figure rule, the summary and the tests read these lists, in this order.

Adding a table: a builder (in training.py, serving.py or profiling.py) and a Table entry, with
its caption file under workflow/report/. Adding a figure: the same with a Figure entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .budget import gpu_time_table
from .ladder import ladder_figure, ladder_table
from .profiling import (
    flash_table,
    idle_share_figure,
    module_table,
    operator_table,
    phase_table,
    recompute_table,
    top_operator_table,
)
from .serving import (
    percentile_figure,
    request_latency_figure,
    serving_table,
    sweep_figure,
    throughput_figure,
)
from .training import (
    method_tradeoff_figure,
    scaling_figure,
    scaling_table,
    size_ratio_table,
    training_table,
    training_throughput_figure,
)

# The tidy frames a builder can take, each written by the tidy_results rule under this name
TIDY_FRAMES = ("cells", "platforms", "top_operators", "requests")


@dataclass(frozen=True)
class Table:
    name: str  # file stem: results/tables/<name>.md, .csv and .tex
    title: str  # the heading of the table (and its LaTeX caption, with the note)
    reproduces: str  # the study's item: "Table III", "Fig. 4", "operator level", ...
    build: Callable  # build(*frames named in inputs) -> table, or (table, note)
    caption: str  # the Snakemake report's caption, a file under workflow/report/
    inputs: tuple[str, ...] = ("cells",)  # tidy frames build() takes, in order
    note: str = ""  # under the table; a build() that returns a note of its own wins
    empty: str = "no cells measured"  # in place of the table when it has no rows


@dataclass(frozen=True)
class Figure:
    name: str  # file stem: results/figures/<name>.png and .pdf
    title: str  # what it shows, in a few words (the report's label)
    reproduces: str
    draw: Callable  # draw(*frames named in inputs, png=..., pdf=...)
    stages: tuple[str, ...]  # planned only when the config runs every one of them
    caption: str
    inputs: tuple[str, ...] = ("cells",)


# Tables are written whatever the config runs: an empty one says that nothing was measured.
TABLES = [
    Table(
        "table1_hardware",
        "Table I: hardware of each platform, from the environment manifests",
        "Table I",
        lambda platforms: platforms,  # tidying built it from the records (platforms.py)
        "table1_hardware.rst",
        inputs=("platforms",),
    ),
    Table(
        "table2_frameworks",
        "Table II: pre-training frameworks without ZeRO, batch 1 and the largest batch",
        "Table II",
        partial(training_table, stage="pretrain", methods=["baseline"]),
        "table2_frameworks.rst",
    ),
    Table(
        "table3_methods_b1",
        "Table III: pre-training methods alone and combined, batch 1",
        "Table III",
        partial(training_table, stage="pretrain", batches=["1"]),
        "table3_methods_b1.rst",
    ),
    Table(
        "table4_methods_max",
        "Table IV: pre-training methods at the largest batch each allows",
        "Table IV",
        partial(training_table, stage="pretrain", batches=["max"]),
        "table4_methods_max.rst",
    ),
    Table(
        "fig4_scaling",
        "Fig. 4 data: scaling efficiency = throughput(N) / (N x throughput(1))",
        "Fig. 4",
        partial(scaling_table, stage="pretrain"),
        "fig4_scaling.rst",
    ),
    Table(
        "table9_finetune",
        "Table IX: LoRA and QLoRA fine-tuning, batch 1 and the largest batch",
        "Table IX",
        partial(training_table, stage="finetune"),
        "table9_finetune.rst",
    ),
    Table(
        "table9_size_ratio",
        "Table IX check: fine-tuning throughput of 13B over 7B (the study reports 13B about 30% "
        "slower)",
        "Table IX's claim that 13B is about 30% slower than 7B",
        partial(size_ratio_table, stage="finetune"),
        "table9_size_ratio.rst",
        note="every configuration measured with both model sizes on one platform",
        empty="no configuration was measured with both llama2-7b and llama2-13b",
    ),
    Table(
        "serving",
        "Figs. 6-10 in numbers: serving throughput and latency per engine",
        "Figs. 6-10",
        serving_table,
        "serving.rst",
        note="requests: completed of sent; failed: requests that did not complete (truncated, "
        "timeout, connection, http error); truncated: streams that ended early; wrong length: "
        "completed responses whose token count differs from max_tokens; throughput over the "
        "makespan (first send to the last completed response's end); TTFT, TPOT, ITL and E2E "
        "as defined in the README; an offline row: the engine's batch API, no server (its "
        "generation time); served / offline: a served cell's output tokens/s over it",
    ),
    Table(
        "table5_phases",
        "Table V: forward, backward and optimizer time per step, and idle share",
        "Table V",
        phase_table,
        "table5_phases.rst",
        note="per profiled step; wall: the phase's range (on a GPU, its window on the device: "
        "from its start, or the previous phase's end, to the end of the last kernel it "
        "launched); busy: time with at least one device activity running (GPU kernels; on a "
        "CPU, the profiler's CPU operators); idle = 1 - busy / wall; profiler overhead: "
        "profiled over unprofiled median step time - 1",
    ),
    Table(
        "table6_modules",
        "Table VI: time per module in forward and backward, per profiled step",
        "Table VI",
        module_table,
        "table6_modules.rst",
        note="inclusive of the modules inside (a decoder layer holds attention, MLP, norms); "
        "kernels attributed through the profiler's launch and autograd links; share of the "
        "forward and backward activity; other: activity no module claims (the coverage figure)",
    ),
    Table(
        "table7_recompute",
        "Table VII: recomputation by batch size, phase times and idle share",
        "Table VII",
        recompute_table,
        "table7_recompute.rst",
        note="recompute: the forward of the decoder layers run again inside the backward",
    ),
    Table(
        "table8_flash",
        "Table VIII: attention module forward and backward, FlashAttention against plain",
        "Table VIII",
        flash_table,
        "table8_flash.rst",
        note="attention module including its projections; faster = 1 - flash / plain",
        empty="no cell was profiled both with and without flash (same model, framework and batch)",
    ),
    Table(
        "operators",
        "Operator level: activity by category, and communication overlap",
        "operator level",
        operator_table,
        "operators.rst",
        note="share of the step's activity (GPU kernels; on a CPU, operators' self time); comm "
        "overlapped: share of collective time with computation running on another stream or "
        "thread",
    ),
    Table(
        "top_operators",
        "Operator level: the five operators that took the most time per cell",
        "operator level",
        top_operator_table,
        "top_operators.rst",
        inputs=("top_operators",),
    ),
    Table(
        "ladder",
        "Optimization ladder: one feature more per rung, every rung at one batch",
        "beyond the study",
        ladder_table,
        "ladder.rst",
        empty="no ladder measured (config key ladder)",
    ),
    Table(
        "gpu_time",
        "Device time: per cell and per stage, searching, engine start and measuring",
        "beyond the study",
        gpu_time_table,
        "gpu_time.rst",
    ),
]

FIGURES = [
    Figure(
        "fig4_scaling_efficiency",
        "Fig. 4: scaling efficiency against the number of GPUs",
        "Fig. 4",
        partial(scaling_figure, stage="pretrain"),
        ("pretrain",),
        "fig4_scaling.rst",
    ),
    Figure(
        "pretrain_throughput",
        "pre-training throughput and memory per configuration",
        "beyond the study",
        partial(training_throughput_figure, stage="pretrain"),
        ("pretrain",),
        "training_throughput.rst",
    ),
    Figure(
        "finetune_throughput",
        "fine-tuning throughput and memory per configuration",
        "beyond the study",
        partial(training_throughput_figure, stage="finetune"),
        ("finetune",),
        "training_throughput.rst",
    ),
    Figure(
        "pretrain_method_tradeoff",
        "pre-training throughput against memory per method",
        "beyond the study",
        partial(method_tradeoff_figure, stage="pretrain"),
        ("pretrain",),
        "method_tradeoff.rst",
    ),
    Figure(
        "fig6_serving_throughput",
        "Fig. 6: serving throughput per engine",
        "Fig. 6",
        throughput_figure,
        ("serve",),
        "fig6_serving_throughput.rst",
    ),
    Figure(
        "fig7_ttft",
        "Fig. 7: time to first token over requests",
        "Fig. 7",
        partial(request_latency_figure, metric="ttft"),
        ("serve",),
        "fig7_ttft.rst",
        inputs=("requests",),
    ),
    Figure(
        "fig8_tpot",
        "Fig. 8: time per output token over requests",
        "Fig. 8",
        partial(request_latency_figure, metric="tpot"),
        ("serve",),
        "fig8_tpot.rst",
        inputs=("requests",),
    ),
    Figure(
        "fig9_e2e",
        "Fig. 9: end-to-end latency over requests",
        "Fig. 9",
        partial(request_latency_figure, metric="e2e"),
        ("serve",),
        "fig9_e2e.rst",
        inputs=("requests",),
    ),
    Figure(
        "fig10_latency_percentiles",
        "Fig. 10: latency percentiles per serving cell",
        "Fig. 10",
        percentile_figure,
        ("serve",),
        "fig10_latency_percentiles.rst",
    ),
    Figure(
        "serving_sweep",
        "Load sweep: throughput against TTFT and TPOT per engine (beyond the study)",
        "beyond the study",
        sweep_figure,
        ("serve",),
        "serving_sweep.rst",
    ),
    Figure(
        "fig5_idle_share",
        "Fig. 5: idle share per phase and profiled cell",
        "Fig. 5",
        partial(idle_share_figure, stage="profile"),
        ("profile",),
        "fig5_idle_share.rst",
    ),
    Figure(
        "ladder_speedup",
        "optimization ladder: throughput and speed-up per rung",
        "beyond the study",
        ladder_figure,
        ("ladder",),
        "ladder.rst",
    ),
]

FIGURE_BY_NAME = {figure.name: figure for figure in FIGURES}


def planned_figures(stages) -> list[Figure]:
    """The figures of a run of these stages, none of a stage it does not run. A config will do:
    its top-level keys name the stages it runs (a disabled stage's key is dropped)."""
    return [figure for figure in FIGURES if set(figure.stages) <= set(stages)]


def table_inputs() -> list[str]:
    """The tidy frames the tables need, in TIDY_FRAMES order."""
    return [name for name in TIDY_FRAMES if any(name in table.inputs for table in TABLES)]
