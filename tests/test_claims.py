"""The study's claims judged from cells, and the coverage page: verdicts follow the numbers and
the thresholds, a claim without its cells says what it needs."""

import pandas as pd
import pytest

from llmdissect.report.claims import CHECKS, Thresholds, judge_claims, load_claims
from llmdissect.report.coverage import PAPER_ITEMS, coverage_frame, in_paper_order, item_of
from llmdissect.report.registry import FIGURES, TABLES
from llmdissect.report.render import build_table
from llmdissect.report.tidy import top_operators_frame


def cell(framework, method, batch, tokens_per_s, memory_gb=10.0, stage="pretrain", **extra):
    return {
        "stage": stage, "platform": "gpu", "model": "llama2-7b", "framework": framework,
        "method": method, "world_size": 1, "batch": batch, "status": "ok",
        "tokens_per_s": tokens_per_s, "peak_mem_allocated_gb": memory_gb, "batch_size": 1,
        "gpu": "1x NVIDIA H200", "key": f"{stage}/{framework}/{method}/{batch}", **extra,
    }  # fmt: skip


def verdicts(cells, claim, thresholds=None):
    table = judge_claims(pd.DataFrame(cells), thresholds)
    return list(table[table["claim"] == claim]["verdict"])


@pytest.mark.parametrize(
    "deepspeed, megatron, verdict",
    [(1100.0, 1000.0, "holds"), (900.0, 1000.0, "contradicts"), (1020.0, 1000.0, "within noise")],
)
def test_deepspeed_against_megatron_at_the_largest_batch(deepspeed, megatron, verdict):
    cells = [
        cell("deepspeed", "baseline", "max", deepspeed),
        cell("megatron", "baseline", "max", megatron),
    ]
    assert verdicts(cells, "1a") == [verdict]


def test_the_tie_threshold_comes_from_the_config():
    cells = [
        cell("deepspeed", "baseline", "max", 1020.0),
        cell("megatron", "baseline", "max", 1000.0),
    ]
    assert verdicts(cells, "1a", Thresholds.from_config({"tie": 0.01})) == ["holds"]


def test_overlapping_intervals_of_repeats_are_noise_however_far_the_medians():
    spread = {"tokens_per_s_ci_low": 800.0, "tokens_per_s_ci_high": 1300.0}
    cells = [
        cell("deepspeed", "baseline", "max", 1200.0, **spread),
        cell("megatron", "baseline", "max", 1000.0, tokens_per_s_ci_low=950.0,
             tokens_per_s_ci_high=1050.0),
    ]  # fmt: skip
    assert verdicts(cells, "1a") == ["within noise"]


def test_a_claim_with_nothing_measured_says_what_it_needs():
    table = judge_claims(pd.DataFrame([cell("torch", "baseline", "1", 10.0)]))
    nvlink = table[table["claim"] == "2b"].iloc[0]
    assert nvlink["verdict"] == "not measurable here"
    assert "NVLink on and off" in nvlink["why"]
    assert set(table["claim"]) == {claim["id"] for claim in load_claims()}


def test_a_percentage_is_judged_in_points_from_the_studys():
    plain = {"module_attention_forward_ms": 10.0, "module_attention_backward_ms": 20.0}
    close = {"module_attention_forward_ms": 6.6, "module_attention_backward_ms": 15.2}
    far = {"module_attention_forward_ms": 9.0, "module_attention_backward_ms": 19.0}
    for flash, expected in (
        (close, ["holds"]),
        (far, ["differs by -24.9 points (forward), -19.7 points (backward)"]),
    ):
        cells = [cell("torch", "baseline", "8", 1.0, stage="profile", **plain),
                 cell("torch", "flash", "8", 1.0, stage="profile", **flash)]  # fmt: skip
        assert verdicts(cells, "4a") == expected


def test_a_gain_is_read_as_time_saved_and_the_speed_up_reading_is_printed_with_its_verdict():
    plain = {"module_attention_forward_ms": 10.0, "module_attention_backward_ms": 20.0}
    flash = {"module_attention_forward_ms": 6.0, "module_attention_backward_ms": 15.0}
    cells = [cell("torch", "baseline", "8", 1.0, stage="profile", **plain),
             cell("torch", "flash", "8", 1.0, stage="profile", **flash)]  # fmt: skip
    row = judge_claims(pd.DataFrame(cells)).query("claim == '4a'").iloc[0]
    assert row["verdict"] == "holds"  # 40% and 25% saved against the study's 34.9% and 24.7%
    assert "read as time saved" in row["why"]
    # as speed-ups 66.7% and 33.3%: the forward is 31.8 points off the study's
    assert "forward 66.7%, backward 33.3%, verdict: differs by +31.8 points" in row["why"]


def test_an_idle_share_from_a_heavily_profiled_step_says_so():
    profiled = {"step_idle_share": 0.5, "profiler_overhead": 0.46}
    light = {"step_idle_share": 0.5, "profiler_overhead": 0.02}
    for extra, noted in ((profiled, True), (light, False)):
        cells = [cell("torch", "baseline", "1", 1.0, stage="profile", **extra)]
        row = judge_claims(pd.DataFrame(cells)).query("claim == '5a'").iloc[0]
        assert row["verdict"].startswith("differs by")
        assert ("profiler made this step 46% slower" in row["why"]) is noted


def test_a_finding_on_another_model_than_the_studys_says_it_stands_in():
    for model, noted in (("llama2-1.3b", True), ("llama2-7b", False)):
        cells = [
            cell("deepspeed", "baseline", "max", 1100.0, model=model),
            cell("megatron", "baseline", "max", 1000.0, model=model),
        ]
        row = judge_claims(pd.DataFrame(cells)).query("claim == '1a'").iloc[0]
        assert row["verdict"] == "holds"
        assert ("llama2-1.3b stands in for the study's llama2-7b" in row["why"]) is noted


def test_the_datacenter_lead_is_judged_only_where_the_studys_leading_engine_ran():
    def served(engine, speed):
        return cell(engine, "burst", "1", None, stage="serve", output_tokens_per_s=speed)

    without = [served("vllm", 4420.0), served("lmdeploy", 4172.0)]
    row = judge_claims(pd.DataFrame(without)).query("claim == '7b'").iloc[0]
    assert row["verdict"] == "not comparable" and "lightllm" in row["why"]
    with_leader = [served("vllm", 4420.0), served("lightllm", 8000.0)]
    assert verdicts(with_leader, "7b") == ["holds"]


def test_a_claim_read_from_a_table_alone_says_it_is_inferred():
    table = judge_claims(pd.DataFrame([cell("torch", "baseline", "1", 10.0)]))
    inferred = set(table[table["why"].str.contains("inferred: the write-up")]["claim"])
    assert inferred == {"3a", "3b", "3d", "6b"}


def test_zero_on_one_process_is_not_judged_as_sharding():
    cells = [
        cell("deepspeed", "zero2", "1", 1.0, memory_gb=8.0),
        cell("deepspeed", "baseline", "1", 1.0, memory_gb=10.0),
    ]
    row = judge_claims(pd.DataFrame(cells)).query("claim == '3a'").iloc[0]
    assert row["verdict"] == "not comparable" and "no rank to shard over" in row["why"]
    assert row["ours"] == "zero2 8 vs baseline 10 GB (-20%)"  # the numbers still shown


def test_13b_following_7b_compares_qlora_against_lora_at_both_sizes():
    def tuned(method, model, speed, memory):
        return cell("torch", method, "1", speed, memory, stage="finetune", model=model)

    same = [
        tuned("lora", "llama2-7b", 1183.0, 17.1),
        tuned("qlora", "llama2-7b", 950.0, 8.2),
        tuned("lora", "llama2-13b", 1146.0, 31.3),
        tuned("qlora", "llama2-13b", 752.0, 13.8),
    ]
    row = judge_claims(pd.DataFrame(same)).query("claim == '6d'").iloc[0]
    assert row["verdict"] == "holds"
    assert row["ours"] == (
        "QLoRA against LoRA: 7B memory -52%, throughput -20%; 13B memory -56%, throughput -34%"
    )
    flipped = [*same[:3], tuned("qlora", "llama2-13b", 1500.0, 13.8)]
    assert verdicts(flipped, "6d") == ["contradicts"]  # QLoRA faster at 13B only


def test_platforms_are_compared_in_serving_where_the_same_cell_ran_on_each():
    def served(platform, gpu, speed):
        return cell("vllm", "burst", "1", None, stage="serve", platform=platform, gpu=gpu,
                    output_tokens_per_s=speed)  # fmt: skip

    cells = [served("a800", "8x NVIDIA A800-SXM4-80GB", 3000.0),
             served("rtx3090", "8x NVIDIA GeForce RTX 3090", 1040.0),
             served("rtx4090", "8x NVIDIA GeForce RTX 4090", 1000.0)]  # fmt: skip
    assert verdicts(cells, "7c") == ["holds"]
    assert verdicts(cells, "7d") == ["within noise"]  # 4% ahead: inside the 5% tie
    cells[1]["output_tokens_per_s"] = 1100.0
    assert verdicts(cells, "7d") == ["holds"]
    cells[1]["output_tokens_per_s"] = 3500.0
    assert verdicts(cells, "7c") == ["contradicts"]
    cells[1]["output_tokens_per_s"] = 2950.0  # 2% behind the A800: inside the 5% tie
    assert verdicts(cells, "7c") == ["within noise"]
    alone = judge_claims(pd.DataFrame(cells[:1])).query("claim == '7c'").iloc[0]
    assert alone["verdict"] == "not measurable here"


def test_cpu_cells_are_judged_with_the_caveat_that_they_are_not_gpus():
    cells = [
        cell("deepspeed", "baseline", "1", 100.0, gpu="cpu"),
        cell("megatron", "baseline", "1", 120.0, gpu="cpu"),
    ]
    table = judge_claims(pd.DataFrame(cells))
    row = table[table["claim"] == "1b"].iloc[0]
    assert row["verdict"] == "holds" and "CPU" in row["why"]


def test_every_claim_names_a_check_and_what_it_needs():
    for claim in load_claims():
        assert claim["check"] in CHECKS, claim["id"]
        assert claim["needs"] and claim["paper"] and claim["item"]


def test_coverage_follows_the_papers_order_and_says_what_is_measured():
    cells = pd.DataFrame(
        [
            cell("torch", "baseline", "1", 10.0),
            cell("deepspeed", "baseline", "1", 9.0),
            cell("megatron", "baseline", "1", 9.5),
        ]
    )
    frames = {
        "cells": cells,
        "platforms": pd.DataFrame([{"platform": "gpu", "GPU": "1x NVIDIA H200"}]),
        "top_operators": top_operators_frame([]),
    }
    built = {t.name: build_table(t, frames)[0] for t in TABLES if "requests" not in t.inputs}
    built.update({t.name: pd.DataFrame() for t in TABLES if t.name not in built})
    coverage = coverage_frame(frames, built).set_index("study item")
    assert list(coverage.index)[: len(PAPER_ITEMS)] == list(PAPER_ITEMS)
    assert coverage.loc["Table II", "status"] == "measured"
    assert coverage.loc["Table II", "platforms with data"] == "gpu"
    assert coverage.loc["Fig. 4", "status"] == "needs 2+ GPUs"
    assert coverage.loc["Table IX", "status"].startswith("wired only")
    # the parts the study ran on several GPUs: a row each, with the GPUs and the config
    several = coverage[coverage["status"].str.startswith("needs ") & (coverage["our files"] == "-")]
    assert "Tables II-IV: 70B pre-training" in several.index
    assert several.loc["Figs. 6-10: 70B serving", "status"] == "needs 4 GPUs of 80 GB"
    assert several.loc["Figs. 6-10: 70B serving", "config"].startswith("config/multigpu.yaml")
    assert set(several["caveats"]) == {"not measurable on one GPU"}


def test_coverage_is_partial_where_a_side_of_the_comparison_did_not_run():
    from llmdissect.report.coverage import missing_sides

    cells = pd.DataFrame(
        [
            cell("megatron", "baseline", "1", 9.5),
            {**cell("deepspeed", "baseline", "1", None), "status": "oom"},
            cell("vllm", "burst", "1", None, stage="serve"),
        ]
    )
    assert missing_sides("Table II", cells) == "deepspeed baseline oom"
    assert missing_sides("Figs. 6-10", cells) == "1 engine (vllm); the study compared three"
    assert missing_sides("Table IX", cells) == ""


def test_every_table_and_figure_belongs_to_a_study_item_in_order():
    assert item_of(next(t for t in TABLES if t.name == "table9_size_ratio")) == "Table IX"
    assert item_of(next(t for t in TABLES if t.name == "table2_frameworks")) == "Table II"
    ordered = [item_of(t) for t in in_paper_order(TABLES)]
    ranks = [list(PAPER_ITEMS).index(i) if i in PAPER_ITEMS else 99 for i in ordered]
    assert ranks == sorted(ranks)
    assert item_of(next(f for f in FIGURES if f.name == "fig4_scaling_efficiency")) == "Fig. 4"


def test_a_claim_whose_compared_cell_ran_out_of_memory_says_so_not_that_nothing_ran():
    oom = cell("deepspeed", "baseline", "1", None, status="oom",
               reason="OutOfMemoryError: CUDA out of memory. Tried to allocate 25.10 GiB. GPU 0 "
                      "has a total capacity of 139.80 GiB")  # fmt: skip
    cells = pd.DataFrame([oom, cell("megatron", "baseline", "1", 1680.0)])
    table = judge_claims(cells).set_index("claim")
    assert table.loc["1b", "verdict"] == "not comparable"
    assert table.loc["1b", "ours"] == "deepspeed baseline b=1: OOM; megatron baseline b=1: ran"
    assert table.loc["1b", "why"] == (
        "deepspeed baseline ran out of memory here: OutOfMemoryError: CUDA out of memory. "
        "Tried to allocate 25.10 GiB"
    )
    assert table.loc["1a", "verdict"] == "not measurable here"  # no largest-batch cells at all


def test_a_memory_claim_holds_where_the_leaner_cell_fits_and_the_other_ran_out_of_memory():
    oom = cell("deepspeed", "baseline", "1", None, status="oom", reason="CUDA out of memory")
    quant = cell("deepspeed", "quant4", "1", 1958.0, memory_gb=9.1)
    row = judge_claims(pd.DataFrame([oom, quant])).query("claim == '3d'").iloc[0]
    assert row["verdict"] == "holds"
    assert row["ours"].endswith("quant4 b=1: ran (it used 9.1 GB)")
    failed_too = {**quant, "status": "oom"}
    assert verdicts([oom, failed_too], "3d") == ["not comparable"]
