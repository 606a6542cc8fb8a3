import pytest

from llmdissect.cells import training_cells
from llmdissect.methods import method_problem, parse_method, stage_problem


def test_baseline_has_no_features_and_combinations_split_on_plus():
    assert parse_method("baseline") == frozenset()
    assert parse_method("zero3+offload+recompute") == {"zero3", "offload", "recompute"}


@pytest.mark.parametrize(
    "framework, method",
    [
        ("deepspeed", "baseline"),
        ("deepspeed", "zero2+offload"),
        ("deepspeed", "zero3+offload+recompute+quant4+flash"),
        ("torch", "recompute+flash+quant4"),
        ("megatron", "recompute"),
        ("torch", "qlora"),
        ("deepspeed", "zero3+offload+recompute+flash+lora"),
        ("deepspeed", "zero2+offload+recompute+flash+qlora"),
        ("torch", "sdpa+fused+compile"),
        ("torch", "flash+fused+compile+recompute"),
        ("deepspeed", "zero2+sdpa+compile"),
        ("megatron", "recompute+fused"),
    ],
)
def test_valid_methods_pass(framework, method):
    assert method_problem(framework, method) is None


@pytest.mark.parametrize(
    "framework, method, expected",
    [
        ("deepspeed", "zero4", "unknown feature zero4"),
        ("deepspeed", "offload+recompute", "offload needs zero2 or zero3"),
        ("megatron", "flash", "framework 'megatron' does not offer flash"),
        ("jax", "baseline", "unknown framework 'jax'"),
        ("torch", "lora+qlora", "lora and qlora exclude each other"),
        ("torch", "quant4+lora", "is qlora; drop quant4"),
        ("deepspeed", "zero3+qlora", "ZeRO-3 cannot partition 4-bit weights"),
        ("megatron", "lora", "framework 'megatron' does not offer lora"),
        ("torch", "flash+sdpa", "two attention kernels; name one"),
        ("deepspeed", "zero2+fused", "DeepSpeed's own AdamW is already fused"),
        ("megatron", "compile", "not wired here"),
        ("megatron", "flash", "needs Transformer Engine"),
    ],
)
def test_invalid_methods_say_why(framework, method, expected):
    assert expected in method_problem(framework, method)


def test_grid_blocks_cross_frameworks_batches_and_world_sizes_once_each():
    section = {
        "models": ["tiny"],
        "grid": [
            {"frameworks": {"deepspeed": ["baseline", "zero2"]}, "batches": [1, "max"]},
            {"frameworks": {"deepspeed": ["zero2"]}, "batches": [1], "world_sizes": [1, 2]},
        ],
    }
    keys = [cell.key for cell in training_cells("pretrain", "cpu", section)]
    assert keys == [
        "pretrain/cpu/tiny/deepspeed/baseline/w1/b1",
        "pretrain/cpu/tiny/deepspeed/baseline/w1/bmax",
        "pretrain/cpu/tiny/deepspeed/zero2/w1/b1",
        "pretrain/cpu/tiny/deepspeed/zero2/w1/bmax",
        "pretrain/cpu/tiny/deepspeed/zero2/w2/b1",
    ]


def test_a_grid_block_with_its_own_models_applies_to_them_only():
    section = {
        "models": ["tiny"],
        "grid": [
            {"models": ["micro"], "frameworks": {"torch": ["baseline"]}, "batches": [8]},
            {"frameworks": {"deepspeed": ["zero2"]}, "batches": [1]},
        ],
    }
    keys = [cell.key for cell in training_cells("profile", "cpu", section)]
    assert keys == [
        "profile/cpu/tiny/deepspeed/zero2/w1/b1",
        "profile/cpu/micro/torch/baseline/w1/b8",
    ]


def test_fine_tuning_methods_train_adapters_and_pre_training_methods_do_not():
    assert stage_problem("finetune", "zero2+lora") is None
    assert stage_problem("pretrain", "zero2") is None
    assert "needs lora or qlora" in stage_problem("finetune", "zero2")
    assert "qlora belongs under finetune" in stage_problem("pretrain", "qlora")


def test_every_registered_framework_names_its_class_and_known_features():
    from llmdissect.frameworks import FRAMEWORKS
    from llmdissect.methods import FEATURES
    from llmdissect.training.frameworks import framework_class

    for name, entry in FRAMEWORKS.items():
        assert framework_class(name).name == name
        assert entry.features <= set(FEATURES), name
