"""The whole default DAG on the small test config, plus lint, format and dry-run checks."""

import json
import re
import subprocess

import pandas as pd
import pytest
from conftest import BIN
from conftest import run_snakemake as snakemake

from llmdissect.records import read_record
from llmdissect.report import registry
from llmdissect.report.claims import load_claims
from llmdissect.serving.trace import read_traces

pytestmark = pytest.mark.workflow


TABLES = [table.name for table in registry.TABLES]
EXPECTED = [
    "results/data/micro/model/config.json",
    "results/data/micro/model/tokenizer.json",
    "results/data/micro/train.jsonl",
    "results/data/micro/prompts.jsonl",
    "results/tidy/metrics.parquet",
    "results/tidy/metrics.csv",
    "results/tidy/cells.parquet",
    "results/summary.md",
    *[f"results/{page}.{e}" for page in ["claims", "coverage"] for e in ["md", "csv", "tex"]],
    *[f"results/tables/{t}.{e}" for t in TABLES for e in ["md", "csv", "tex"]],
    *[f"results/figures/{figure.name}.{e}" for figure in registry.FIGURES for e in ["png", "pdf"]],
    "results/tidy/serving_requests.parquet",
]


def test_every_expected_output_exists(finished_run):
    missing = [p for p in EXPECTED if not (finished_run / p).is_file()]
    assert not missing


def test_the_summary_opens_with_the_verdicts_then_follows_the_papers_order(finished_run):
    summary = (finished_run / "results/summary.md").read_text()
    headings = [line for line in summary.splitlines() if line.startswith("### ")]
    assert headings[0].startswith("### The study's claims")
    assert headings[1].startswith("### Coverage")
    assert (
        headings.index(
            "### " + next(t.title for t in registry.TABLES if t.name == "table1_hardware")
        )
        < headings.index(
            "### " + next(t.title for t in registry.TABLES if t.name == "fig4_scaling")
        )
        < headings.index(
            "### " + next(t.title for t in registry.TABLES if t.name == "table3_methods_b1")
        )
    )
    claims = pd.read_csv(finished_run / "results/claims.csv")
    assert claims[claims["claim"] == "2b"]["verdict"].tolist() == ["not measurable here"]
    assert set(claims["claim"]) == {claim["id"] for claim in load_claims()}  # every claim a row


def test_a_repeated_cell_keeps_each_run_and_its_interval(finished_run):
    path = finished_run / "results/records/pretrain/cpu/micro/torch/baseline/w1/b1.json"
    metrics = read_record(path)["metrics"]
    assert metrics["repeats"] == 2 and len(metrics["repeat_values"]["tokens_per_s"]) == 2
    assert (
        metrics["tokens_per_s_ci_low"] <= metrics["tokens_per_s"] <= metrics["tokens_per_s_ci_high"]
    )
    table2 = pd.read_csv(finished_run / "results/tables/table2_frameworks.csv", dtype=str)
    torch_row = table2[table2["framework"] == "torch"].iloc[0]
    assert "(" in torch_row["b=1 tokens/s"]  # "median (low-high)"


def records_by_key(run) -> dict:
    records = {}
    for path in (run / "results/records").rglob("*.json"):
        record = read_record(path)
        records[record["key"]] = record
    return records


def test_every_cell_has_a_valid_record_with_the_right_outcome(finished_run):
    records = records_by_key(finished_run)
    prefix = "pretrain/cpu/micro"
    expected = {
        *(f"{prefix}/{fw}/baseline/w1/b{b}" for fw in ["torch", "deepspeed", "megatron"]
          for b in ["1", "max", "4096"]),
        f"{prefix}/deepspeed/zero3+offload+recompute/w1/b1",
        f"{prefix}/deepspeed/quant4/w1/b1",
        f"{prefix}/deepspeed/zero2/w1/b2",
        f"{prefix}/deepspeed/zero2/w2/b2",
        "finetune/cpu/micro/torch/lora/w1/b1",
        "finetune/cpu/micro/torch/qlora/w1/b1",
        "finetune/cpu/micro/deepspeed/zero2+lora/w1/b1",
        "serve/cpu/tiny/vllm-cpu/burst/w1",
        "serve/cpu/tiny/transformers/burst/w1",
        "serve/cpu/tiny/vllm-cpu/offline/w1",  # its one engine with an offline mode
        *(f"profile/cpu/micro/{fw}/baseline/w1/b{b}" for fw in ["torch", "deepspeed"]
          for b in ["1", "max"]),
        "profile/cpu/micro/torch/flash/w1/b1",
        "profile/cpu/micro/deepspeed/zero2/w2/b1",
        "ladder/cpu/micro/torch/baseline/w1/bmax",
        "ladder/cpu/micro/torch/sdpa+fused+compile/w1/bmax",
    }  # fmt: skip
    assert set(records) == expected
    ladder = {key: records.pop(key) for key in list(records) if key.startswith("ladder/")}
    profiled = {key: records.pop(key) for key in list(records) if key.startswith("profile/")}
    for key, record in profiled.items():
        assert record["status"] == "ok", (key, record["reason"])
        metrics = record["metrics"]
        assert 0 <= metrics["step_idle_share"] < 1 and "profiler_overhead" in metrics
        assert metrics["forward_wall_ms"] + metrics["backward_wall_ms"] <= metrics["step_wall_ms"]
        assert metrics["module_attention_forward_ms"] > 0 < metrics["module_mlp_backward_ms"]
        assert metrics["op_gemm_ms"] > 0 and metrics["top_operators"]
    zero2 = profiled["profile/cpu/micro/deepspeed/zero2/w2/b1"]["metrics"]
    assert zero2["op_communication_ms"] > 0 and zero2["comm_overlap_share"] is not None
    largest = records["pretrain/cpu/micro/torch/baseline/w1/bmax"]["metrics"]["batch_size"]
    assert profiled["profile/cpu/micro/torch/baseline/w1/bmax"]["metrics"]["batch_size"] == largest
    for key, record in ladder.items():  # every rung at the batch the baseline's search found
        assert record["status"] == "ok", (key, record["reason"])
        assert record["metrics"]["batch_size"] == largest
    compiled = ladder["ladder/cpu/micro/torch/sdpa+fused+compile/w1/bmax"]
    assert compiled["settings"]["compile"]["backend"] == "inductor"
    assert compiled["settings"]["optimizer"] == "torch.optim.AdamW (fused)"
    assert compiled["metrics"]["graphs_compiled_in_measured_steps"] == 0
    assert compiled["metrics"]["compiled_graphs"] >= 1
    serving = {key: records.pop(key) for key in list(records) if key.startswith("serve/")}
    offline = serving.pop("serve/cpu/tiny/vllm-cpu/offline/w1")
    assert offline["status"] == "ok", offline["reason"]
    assert offline["metrics"]["output_tokens"] == 4 * 8 and offline["metrics"]["startup_s"] > 0
    assert (
        "--max-tokens" in offline["settings"]["command"]
        and "ttft_median_ms" not in offline["metrics"]
    )
    for key, record in serving.items():
        assert record["status"] == "ok", (key, record["reason"])
        metrics = record["metrics"]
        assert (metrics["completed"], metrics["failed"]) == (4, 0)
        assert metrics["token_count_mismatches"] == 0  # every response has its 8 new tokens
        assert metrics["ttft_median_ms"] < metrics["e2e_median_ms"]
    for key, record in records.items():
        if key.endswith("b4096"):
            assert record["status"] == "oom", (key, record["reason"])
            assert "allocate" in record["reason"]
        else:
            assert record["status"] == "ok", (key, record["reason"])
            assert record["metrics"]["measured_steps"] == 10
            assert len(record["settings"]["data_sha256"]) == 64
            # --cores 2: each cell has both cores, shared by its processes
            threads = record["environment"]["threads"]
            processes = record["cell"]["world_size"] if "/torch/" not in key else 1
            assert record["settings"]["cpu_threads"] == 2
            assert threads["torch_intra_op"] == 2 // processes
            assert threads["OMP_NUM_THREADS"] == threads["MKL_NUM_THREADS"] == str(2 // processes)
    largest = records[f"{prefix}/deepspeed/baseline/w1/bmax"]
    assert largest["settings"]["batch_search"]["hit_limit"]
    assert largest["metrics"]["batch_size"] == 4
    assert records[f"{prefix}/deepspeed/zero2/w2/b2"]["metrics"]["global_batch_size"] == 4


def test_serving_traces_keep_every_chunk(finished_run):
    for engine in ["vllm-cpu", "transformers"]:
        path = finished_run / f"results/records/serve/cpu/tiny/{engine}/burst/w1.trace.jsonl"
        traces = read_traces(path)
        assert [t.index for t in traces] == [0, 1, 2, 3]
        for trace in traces:
            assert trace.output_tokens == 8 and sum(n for _, n in trace.chunks) == 8
            assert trace.sent < trace.chunks[0][0] <= trace.chunks[-1][0] <= trace.finished
    table = pd.read_csv(finished_run / "results/tables/serving.csv")
    assert set(table["engine"]) == {"vllm-cpu", "transformers"}
    assert set(table["requests"]) == {"4 of 4"}
    # the served vLLM run against its offline one; the other engine has none to be held against
    ratio = table.set_index(["engine", "workload"])["served / offline"]
    assert float(ratio["vllm-cpu", "burst"]) > 0
    assert ratio["transformers", "burst"] == "-" and ratio["vllm-cpu", "offline"] == "-"


def test_steps_are_kept_beside_each_record(finished_run):
    steps = finished_run / "results/records/pretrain/cpu/micro/torch/baseline/w1/b1.steps.jsonl"
    rows = [json.loads(line) for line in steps.read_text().splitlines()]
    assert sum(not r["warmup"] for r in rows) == 10


def test_tables_show_oom_cells_and_scaling(finished_run):
    tables = finished_run / "results/tables"
    table2 = pd.read_csv(tables / "table2_frameworks.csv", dtype=str)
    assert set(table2["framework"]) == {"torch", "deepspeed", "megatron"}
    assert set(table2["b=4096 tokens/s"]) == {"OOM"}
    assert set(table2["max batch"]) == {">=4"}  # the search stopped at its limit, 4
    assert "OOM" in (tables / "table2_frameworks.md").read_text()
    table3 = pd.read_csv(tables / "table3_methods_b1.csv", dtype=str)
    assert {"zero3+offload+recompute", "quant4", "baseline"} <= set(table3["method"])
    scaling = pd.read_csv(tables / "fig4_scaling.csv")
    assert list(scaling["GPUs"]) == [1, 2]
    assert scaling["scaling efficiency"].iloc[0] == 1.0
    # two processes on two busy cores: the value is noise, its formula is not
    two = [json.loads(p.read_text())["metrics"]["tokens_per_s"] for p in sorted(
        (finished_run / "results/records/pretrain/cpu/micro/deepspeed/zero2").glob("w*/b2.json")
    )]  # fmt: skip
    assert scaling["scaling efficiency"].iloc[1] == pytest.approx(two[1] / (2 * two[0]), abs=1e-3)
    table9 = pd.read_csv(tables / "table9_finetune.csv", dtype=str)
    assert set(table9["method"]) == {"lora", "qlora", "zero2+lora"}
    assert not table9["b=1 tokens/s"].isin(["OOM", "error", "-"]).any()
    tidy = pd.read_parquet(finished_run / "results/tidy/metrics.parquet")
    assert {"key", "status", "metric", "value"} <= set(tidy.columns)


def test_profile_tables_pair_flash_with_plain_and_name_every_module(finished_run):
    tables = finished_run / "results/tables"
    table8 = pd.read_csv(tables / "table8_flash.csv", dtype=str)
    assert list(table8["method"]) == ["baseline -> flash"]
    assert not table8["forward faster"].isin(["-", "error"]).any()
    table6 = pd.read_csv(tables / "table6_modules.csv", dtype=str)
    modules = set(table6["module"])
    assert {"Embedding", "RMSNorm", "SiLU", "LM head", "loss", "other (no module)"} <= modules
    operators = pd.read_csv(tables / "operators.csv", dtype=str)
    zero2 = operators[operators["method"] == "zero2"].iloc[0]
    assert zero2["communication"] != "0.0%"
    top = pd.read_csv(tables / "top_operators.csv")
    assert set(top["rank"]) == {1, 2, 3, 4, 5}


def test_ladder_table_orders_rungs_as_configured(finished_run):
    ladder = pd.read_csv(finished_run / "results/tables/ladder.csv", dtype=str)
    assert list(ladder["rung"]) == ["baseline", "sdpa+fused+compile"]
    assert ladder["speed-up"].iloc[0] == "1.00x"
    assert ladder["compile (s)"].iloc[0] == "-" and ladder["compile (s)"].iloc[1] != "-"
    assert (finished_run / "results/figures/ladder_speedup.png").stat().st_size > 0


def test_a_second_run_has_nothing_to_do(finished_run):
    done = snakemake(finished_run, "-n", "--configfile", "tests/config/test.yaml")
    assert done.returncode == 0
    assert "Nothing to be done" in done.stdout + done.stderr


def test_html_report_is_built(finished_run):
    done = snakemake(
        finished_run, "--configfile", "tests/config/test.yaml", "--report", "results/report.html"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (finished_run / "results/report.html").stat().st_size > 10_000


def test_a_bad_config_is_refused_naming_the_key_without_a_traceback(workflow_copy):
    bad = workflow_copy / "bad.yaml"
    bad.write_text(
        "pretrain:\n  grid:\n    - frameworks: {torch: [baseline]}\n"
        "      batches: [0]\n  bogus: 1\n"
    )
    done = snakemake(workflow_copy, "-n", "--configfile", str(bad))
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "config key pretrain.grid[0].batches[0]" in output
    assert "unknown config key pretrain.bogus" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "args",
    [
        ["--configfile", "config/paper.yaml"],
        ["--workflow-profile", "profiles/slurm"],
        ["--workflow-profile", "profiles/slurm", "--configfile", "config/paper.yaml"],
    ],
)
def test_dry_runs_plan_the_grid(workflow_copy, args):
    done = snakemake(workflow_copy, "-n", *args, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    if "config/paper.yaml" in args:
        # 84 pre-training cells and 78 fine-tuning cells
        assert re.search(r"^training_cell\s+162$", done.stdout, re.MULTILINE)


def test_lint_and_format_are_clean(repo, workflow_copy):
    lint = snakemake(workflow_copy, "--lint", timeout=300)
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "."],
        cwd=workflow_copy,
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stderr[-3000:]
    ruff = subprocess.run(
        [str(BIN / "ruff"), "check", "."], cwd=repo, capture_output=True, text=True, check=False
    )
    assert ruff.returncode == 0, ruff.stdout[-3000:]
