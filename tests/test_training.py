"""Real training probes in child processes, on the CPU, with the micro and tiny models."""

import json

import pytest
import torch

from llmdissect.cells import TrainingCell
from llmdissect.data import training_samples, write_training_samples
from llmdissect.models import LLAMA2_SHAPES, param_count
from llmdissect.records import read_record
from llmdissect.training.cell import ProbeLimits, SearchSettings, run_training_cell
from llmdissect.training.memory import is_out_of_memory
from llmdissect.training.probe import run_probe
from llmdissect.training.spec import TrainSpec


@pytest.fixture
def spec(tmp_path):
    samples = tmp_path / "train.jsonl"
    write_training_samples(samples, training_samples(0, 8, 48, 8, 1024))
    return TrainSpec(
        shape=LLAMA2_SHAPES["micro"],
        framework="torch",
        method="baseline",
        batch_size=2,
        samples_path=str(samples),
        warmup_steps=1,
        measured_steps=10,
    )


def test_a_probe_measures_real_steps(spec, tmp_path):
    outcome = run_probe(spec, tmp_path / "work", "p", keep_steps=True, timeout_s=300)
    assert outcome["status"] == "ok", outcome
    metrics = outcome["metrics"]
    assert metrics["measured_steps"] == 10
    assert metrics["tokens_per_s"] > 0
    assert metrics["tokens_per_s_padded"] >= metrics["tokens_per_s"]  # lengths vary: padding
    assert metrics["step_time_ms_p10"] <= metrics["step_time_ms_median"]
    assert metrics["params_total"] == metrics["params_trainable"] > 0
    assert metrics["peak_rss_gb"] > 0 and metrics["mfu"] is None  # no GPU peak on a CPU
    steps = [
        json.loads(line)
        for line in (tmp_path / "work/p.steps.jsonl").read_text().split("\n")
        if line
    ]
    assert [s["warmup"] for s in steps] == [True] + [False] * 10
    assert outcome["environment"]["host"]["cpu_logical_cores"] >= 1


def test_an_allocation_past_the_memory_cap_is_an_oom_outcome(spec, tmp_path):
    # 4096 samples x 48 tokens x 1024 logits in fp32 alone is 0.8 GB: past a 0.6 GB cap.
    big = spec.with_batch(4096, warmup_steps=0, measured_steps=1)
    big.memory_limit_gb = 0.6
    outcome = run_probe(big, tmp_path / "work", "big", keep_steps=False, timeout_s=300)
    assert outcome["status"] == "oom", outcome
    assert "allocate" in outcome["reason"]


def test_an_unknown_method_is_infeasible_not_a_crash(spec, tmp_path):
    spec.method = "zero9"
    outcome = run_probe(spec, tmp_path / "work", "x", keep_steps=False, timeout_s=300)
    assert outcome["status"] == "infeasible"
    assert "unknown feature zero9" in outcome["reason"]


def test_a_crash_in_the_child_is_an_error_outcome(spec, tmp_path):
    spec.samples_path = str(tmp_path / "missing.jsonl")
    outcome = run_probe(spec, tmp_path / "work", "e", keep_steps=False, timeout_s=300)
    assert outcome["status"] == "error"
    assert "missing.jsonl" in outcome["reason"]


def test_largest_batch_cell_writes_a_valid_record_with_its_search(spec, tmp_path):
    cell = TrainingCell("pretrain", "cpu", "micro", "torch", "recompute", 1, "max")
    spec.method = "recompute"
    record = run_training_cell(
        cell,
        spec,
        SearchSettings(start=1, limit=4, fit_check_steps=1),
        settings={"world_size": 1},
        record_path=tmp_path / "r.json",
        steps_path=tmp_path / "r.steps.jsonl",
        workdir=tmp_path / "work",
        limits=ProbeLimits(timeout_s=300),
        log=lambda message: None,
    )
    assert read_record(tmp_path / "r.json") == record
    assert record["status"] == "ok" and record["metrics"]["batch_size"] == 4
    search = record["settings"]["batch_search"]
    # no memory cap on this spec, so no line to predict with: the search doubles
    assert search["hit_limit"] and [p["batch"] for p in search["probes"]] == [1, 2, 4]
    assert search["method"] == "predicted" and search["probe_count"] == 3
    assert all(p["seconds"] > 0 for p in search["probes"])
    assert record["settings"]["recompute"] is True


@pytest.mark.parametrize(
    "framework, method, world_size, expected",
    [
        ("deepspeed", "zero3+offload+recompute", 1, {"zero_stage": 3, "offload": True}),
        ("deepspeed", "quant4+flash", 1, {"zero_stage": 0, "attention": "sdpa"}),
        ("deepspeed", "zero2", 2, {"zero_stage": 2}),
        ("megatron", "recompute", 2, {"tensor_parallel": 2, "data_parallel": 1}),
    ],
)
def test_distributed_frameworks_run_their_methods(
    spec, tmp_path, framework, method, world_size, expected
):
    spec.framework, spec.method, spec.world_size = framework, method, world_size
    spec.options = {"tensor_parallel": world_size} if framework == "megatron" else {}
    outcome = run_probe(spec, tmp_path / "work", "d", keep_steps=False, timeout_s=600)
    assert outcome["status"] == "ok", outcome
    assert expected.items() <= outcome["details"].items()
    metrics = outcome["metrics"]
    assert metrics["world_size"] == world_size
    # Tensor-parallel ranks share one batch; data-parallel ranks each train their own.
    data_parallel = outcome["details"].get("data_parallel", world_size)
    assert metrics["global_batch_size"] == spec.batch_size * data_parallel


def test_quantized_weights_are_frozen_and_counted(spec, tmp_path):
    spec.method = "quant4"
    outcome = run_probe(spec, tmp_path / "work", "q", keep_steps=False, timeout_s=300)
    assert outcome["status"] == "ok", outcome
    metrics = outcome["metrics"]
    shape = spec.shape
    embedding_and_head = 2 * shape.vocab_size * shape.hidden_size
    norms = (2 * shape.num_layers + 1) * shape.hidden_size
    assert metrics["params_trainable"] == embedding_and_head + norms
    assert metrics["params_total"] == param_count(shape)
    assert outcome["details"]["quantized_linears"] == 7 * shape.num_layers


LORA = {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


@pytest.mark.parametrize(
    "framework, method, base",
    [
        ("torch", "lora", "float32"),
        ("torch", "qlora", "NF4"),
        ("deepspeed", "zero2+lora", "float32"),
    ],
)
def test_fine_tuning_trains_only_the_adapters(spec, tmp_path, framework, method, base):
    spec.framework, spec.method, spec.options = framework, method, {"lora": LORA}
    outcome = run_probe(spec, tmp_path / "work", "f", keep_steps=False, timeout_s=600)
    assert outcome["status"] == "ok", outcome
    metrics, shape = outcome["metrics"], spec.shape
    # A (rank x in) and B (out x rank) on q and v of every layer; q and v are hidden x hidden here
    adapters = shape.num_layers * 2 * (2 * LORA["rank"] * shape.hidden_size)
    assert metrics["params_trainable"] == adapters
    assert metrics["params_total"] == param_count(shape) + adapters
    assert metrics["matmul_params_trainable"] == adapters
    assert "LoRA adapters only (rank 4" in outcome["details"]["trained"]
    assert base in outcome["details"]["trained"]


@pytest.mark.parametrize(
    "error, expected",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 448.00 MiB"), True),
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate`"), True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory"), True),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_is_told_from_other_failures(error, expected):
    assert is_out_of_memory(error) is expected


@pytest.mark.parametrize(
    "method, attention, optimizer",
    [
        ("baseline", "eager (matmul, softmax, matmul)", "torch.optim.AdamW (for-loop)"),
        ("sdpa+fused", "torch SDPA, torch's kernel choice", "torch.optim.AdamW (fused)"),
        ("flash", "torch SDPA held to its flash kernel", "torch.optim.AdamW (for-loop)"),
    ],
)
def test_records_name_the_attention_kernel_and_optimizer_that_ran(
    spec, tmp_path, method, attention, optimizer
):
    spec.method, spec.measured_steps = method, 2
    outcome = run_probe(spec, tmp_path / "work", "p", keep_steps=False, timeout_s=300)
    assert outcome["status"] == "ok", outcome
    details = outcome["details"]
    assert (details["attention_kernel"], details["optimizer"]) == (attention, optimizer)
    assert details["compile"] is None and "compile_s" not in outcome["metrics"]


def test_compile_time_is_the_warmup_beyond_a_measured_step_and_late_graphs_are_counted():
    from llmdissect.training.loop import StepRecord
    from llmdissect.training.metrics import compile_metrics

    steps = [
        StepRecord(0, True, 5000.0, 10, 10, 1.0, graphs=2),  # compiled here
        StepRecord(1, True, 12.0, 10, 10, 1.0, graphs=2),
        StepRecord(2, False, 10.0, 10, 10, 1.0, graphs=2),
        StepRecord(3, False, 900.0, 10, 10, 1.0, graphs=3),  # a recompile in a measured step
    ]
    metrics = compile_metrics(steps, median_ms=10.0)
    assert metrics == {
        "compile_s": 4.992,
        "compiled_graphs": 3,
        "graphs_compiled_in_measured_steps": 1,
    }
    plain = [StepRecord(0, False, 10.0, 10, 10, 1.0)]
    assert compile_metrics(plain, median_ms=10.0) == {}


def test_one_rank_of_a_distributed_framework_starts_without_torchrun(spec, tmp_path):
    from llmdissect.training.probe import launch_command, lone_rank, lone_rank_rendezvous

    spec.framework = "deepspeed"
    assert lone_rank(spec, env={}) and launch_command(spec, ["s", "o"], env={})[1:3] == [
        "-m",
        "llmdissect.training.probe",
    ]
    rendezvous = lone_rank_rendezvous()
    assert (rendezvous["RANK"], rendezvous["WORLD_SIZE"]) == ("0", "1")
    assert 0 < int(rendezvous["MASTER_PORT"]) < 65536
    spec.world_size = 2
    assert not lone_rank(spec, env={})
    assert "torch.distributed.run" in launch_command(spec, ["s", "o"], env={})
    spec.framework, spec.world_size = "torch", 1
    assert not lone_rank(spec, env={})  # one process, no process group at all
