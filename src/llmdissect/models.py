"""Model zoo: Llama-2 architectures as plain shapes, their sizes and FLOPs, and a builder.

Weights are always random: runtime does not depend on their values; nothing comes from a hub.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelShape:
    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    ffn_size: int
    vocab_size: int = 32000
    max_seq_len: int = 4096

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def as_dict(self) -> dict:
        return asdict(self)


LLAMA2_SHAPES: dict[str, ModelShape] = {
    shape.name: shape
    for shape in [
        ModelShape("llama2-7b", 4096, 32, 32, 32, 11008),
        ModelShape("llama2-13b", 5120, 40, 40, 40, 13824),
        ModelShape("llama2-70b", 8192, 80, 64, 8, 28672),
        # Llama-2 layout at about 1.3 B: every method fits one 80 GB GPU.
        ModelShape("llama2-1.3b", 2048, 24, 16, 16, 5504),
        # CPU shapes: the full Llama-2 vocabulary, so the tokenizer and LM head stay realistic.
        ModelShape("tiny", 128, 2, 4, 4, 344, max_seq_len=1024),
        # Test shape: a small vocabulary keeps the whole DAG to seconds per cell.
        ModelShape("micro", 64, 2, 4, 4, 172, vocab_size=1024, max_seq_len=1024),
    ]
}


def shape_from_config(name: str, custom_shapes: dict | None = None) -> ModelShape:
    """Look a model up in the config's own shapes first, then in the built-in zoo."""
    custom_shapes = custom_shapes or {}
    if name in custom_shapes:
        return ModelShape(name=name, **custom_shapes[name])
    if name in LLAMA2_SHAPES:
        return LLAMA2_SHAPES[name]
    known = sorted(set(LLAMA2_SHAPES) | set(custom_shapes))
    raise KeyError(f"unknown model {name!r}; known models: {', '.join(known)}")


def matmul_params_per_layer(shape: ModelShape) -> int:
    kv_width = shape.num_kv_heads * shape.head_dim
    attention = 2 * shape.hidden_size * shape.hidden_size + 2 * shape.hidden_size * kv_width
    mlp = 3 * shape.hidden_size * shape.ffn_size  # gate, up, down (SwiGLU)
    return attention + mlp


def param_count(shape: ModelShape) -> int:
    """Every parameter of the HF Llama model: untied embedding and LM head, RMSNorm weights."""
    embedding = shape.vocab_size * shape.hidden_size
    norms_per_layer = 2 * shape.hidden_size
    layers = shape.num_layers * (matmul_params_per_layer(shape) + norms_per_layer)
    return embedding + layers + shape.hidden_size + shape.vocab_size * shape.hidden_size


def matmul_param_count(shape: ModelShape) -> int:
    """Parameters used in a matrix multiply: every layer and the LM head, not the lookup."""
    return shape.num_layers * matmul_params_per_layer(shape) + shape.vocab_size * shape.hidden_size


def forward_flops_per_token(shape: ModelShape, seq_len: int) -> float:
    """2 FLOPs per matmul parameter, plus QK^T and AV: 4 x layers x seq x hidden (no causal mask
    halving)."""
    return 2.0 * matmul_param_count(shape) + 4.0 * shape.num_layers * seq_len * shape.hidden_size


def training_flops_per_token(
    shape: ModelShape,
    seq_len: int,
    recompute: bool = False,
    matmul_params: int | None = None,
    trainable_matmul_params: int | None = None,
) -> float:
    """Model FLOPs of one training token, counting frozen weights honestly.

    Forward: 2 per matmul parameter M, plus attention A = 4 x layers x seq x hidden. Backward: 2 x M
    for the input gradients (every layer needs them while anything below it trains), 2 x T for the
    weight gradients of the trainable matmul parameters T only, and 2 x A. Total 4M + 2T + 3A;
    with everything trained (T = M) that is the usual 3 forwards. M and T default to the shape's
    matmul parameters (full training); LoRA's adapters add to M and are all of T.
    With recompute=True the forward runs again in the backward pass (hardware FLOPs, for HFU).
    """
    m = matmul_param_count(shape) if matmul_params is None else matmul_params
    t = m if trainable_matmul_params is None else trainable_matmul_params
    attention = 4.0 * shape.num_layers * seq_len * shape.hidden_size
    flops = 4.0 * m + 2.0 * t + 3.0 * attention
    return flops + (2.0 * m + attention if recompute else 0.0)


def build_hf_model(shape: ModelShape, dtype: str = "float32", attention: str = "sdpa"):
    """A randomly initialised transformers LlamaForCausalLM of the given shape."""
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM._from_config(
        hf_config(shape), attn_implementation=attention, dtype=torch_dtype(dtype)
    )


def torch_dtype(name: str):
    """The torch dtype of a config name (float32, bfloat16, float16: torch's own names)."""
    import torch

    return getattr(torch, name)


def hf_config(shape: ModelShape):
    from transformers import LlamaConfig

    return LlamaConfig(
        architectures=["LlamaForCausalLM"],  # engines pick their model class from it
        hidden_size=shape.hidden_size,
        intermediate_size=shape.ffn_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        vocab_size=shape.vocab_size,
        max_position_embeddings=shape.max_seq_len,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
