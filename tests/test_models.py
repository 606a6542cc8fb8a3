import pytest

from llmdissect.models import (
    LLAMA2_SHAPES,
    build_hf_model,
    forward_flops_per_token,
    matmul_param_count,
    param_count,
    shape_from_config,
    training_flops_per_token,
)


@pytest.mark.parametrize(
    "name, billions",
    [("llama2-7b", 6.74), ("llama2-13b", 13.02), ("llama2-70b", 68.98)],
)
def test_llama2_parameter_counts_match_the_published_sizes(name, billions):
    assert param_count(LLAMA2_SHAPES[name]) / 1e9 == pytest.approx(billions, abs=0.005)


def test_seven_b_is_exactly_the_hf_count():
    assert param_count(LLAMA2_SHAPES["llama2-7b"]) == 6_738_415_616


@pytest.mark.parametrize("name", ["tiny", "micro"])
def test_param_count_equals_the_built_model(name):
    shape = LLAMA2_SHAPES[name]
    model = build_hf_model(shape)
    assert sum(p.numel() for p in model.parameters()) == param_count(shape)


def test_built_model_has_the_configured_architecture():
    shape = LLAMA2_SHAPES["micro"]
    config = build_hf_model(shape).config
    assert (config.hidden_size, config.num_hidden_layers) == (shape.hidden_size, shape.num_layers)
    assert config.num_key_value_heads == shape.num_kv_heads
    assert config.intermediate_size == shape.ffn_size
    assert config.tie_word_embeddings is False


def test_training_flops_are_three_forwards_and_four_with_recompute():
    shape = LLAMA2_SHAPES["llama2-7b"]
    forward = forward_flops_per_token(shape, 350)
    assert training_flops_per_token(shape, 350) == pytest.approx(3 * forward)
    assert training_flops_per_token(shape, 350, recompute=True) == pytest.approx(4 * forward)
    # 6 x 6.607 B matmul parameters (layers + LM head) + 12 x 32 layers x 350 x 4096.
    assert training_flops_per_token(shape, 350) == 6 * 6_607_077_376 + 12 * 32 * 350 * 4096


def test_custom_shapes_come_before_the_zoo_and_unknown_names_are_named():
    custom = {"mine": dict(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2, ffn_size=64)}
    assert shape_from_config("mine", custom).hidden_size == 32
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        shape_from_config("nope", custom)


def test_frozen_weights_cost_forward_and_input_gradients_but_no_weight_gradients():
    shape = LLAMA2_SHAPES["llama2-7b"]
    m, adapters = matmul_param_count(shape), 40_000_000
    attention = 4 * 32 * 350 * 4096
    lora = training_flops_per_token(shape, 350, matmul_params=m + adapters,
                                    trainable_matmul_params=adapters)  # fmt: skip
    assert lora == 4 * (m + adapters) + 2 * adapters + 3 * attention
    assert lora < training_flops_per_token(shape, 350)  # about two thirds of full training
