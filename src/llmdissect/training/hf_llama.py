"""The HF Llama model with a method's features applied: attention kernel, recomputation, 4-bit
weights, LoRA adapters. Shared by every framework that trains the transformers model."""

from __future__ import annotations

import contextlib
import importlib.util

import torch

from ..methods import parse_method
from ..models import build_hf_model, torch_dtype
from .spec import TrainSpec

INIT_STD = 0.02  # transformers' initializer_range for Llama


def attention_choice(features: frozenset[str], device: str) -> str:
    """Plain (eager) attention without the flash feature, as the study's unfused baseline."""
    if "flash" not in features:
        return "eager"
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn"):
        return "flash_attention_2"
    return "sdpa"


def attention_context(attention: str):
    """Hold SDPA to its flash kernel, so a fallback to another kernel fails loudly instead."""
    if attention != "sdpa":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.FLASH_ATTENTION)


def quantize_decoder_linears(model, compute_dtype: torch.dtype, device: str) -> int:
    """Give every projection of the decoder layers a frozen NF4 (double-quantized) weight.

    The model comes from the meta device: each projection gets random weights on the target
    device and is quantized at once, so the unquantized projections never exist all together
    (a 70B model's bf16 projections would not fit an 80 GB GPU). Returns how many were swapped.
    """
    import bitsandbytes as bnb

    swapped = 0
    for layer in model.model.layers:
        for parent in layer.modules():
            for name, child in list(parent.named_children()):
                if not isinstance(child, torch.nn.Linear):
                    continue
                quantized = bnb.nn.Linear4bit(
                    child.in_features,
                    child.out_features,
                    bias=child.bias is not None,
                    compute_dtype=compute_dtype,
                    compress_statistics=True,  # double quantization
                    quant_type="nf4",
                    device="meta",
                )
                weight = torch.empty(child.weight.shape, dtype=compute_dtype, device=device)
                quantized.weight = bnb.nn.Params4bit(
                    weight.normal_(0.0, INIT_STD),
                    requires_grad=False,
                    compress_statistics=True,
                    quant_type="nf4",
                ).to(device)  # quantizes here
                setattr(parent, name, quantized)
                swapped += 1
    return swapped


def materialize_meta_tensors(model, device: str) -> None:
    """Random weights on the device for what the meta build left empty (embedding, norms, LM
    head), initialised as transformers does, and the rotary tables recomputed."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    for module in model.modules():
        for name, parameter in list(module.named_parameters(recurse=False)):
            if not parameter.is_meta:
                continue
            value = torch.empty_like(parameter, device=device)
            if "Norm" in type(module).__name__:
                value.fill_(1.0)
            else:
                value.normal_(0.0, INIT_STD)
            module._parameters[name] = torch.nn.Parameter(value, parameter.requires_grad)
    with torch.device(device):
        model.model.rotary_emb = LlamaRotaryEmbedding(config=model.config)
    left = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"tensors left on the meta device: {', '.join(left[:5])}")


def build_training_model(spec: TrainSpec, device: str):
    """The model on its device, and a description of what was applied for the record."""
    features = parse_method(spec.method)
    attention = attention_choice(features, device)
    torch.manual_seed(spec.seed)
    details = {"attention": attention, "recompute": "recompute" in features}
    if features & {"quant4", "qlora"}:
        with torch.device("meta"):  # no memory: weights are made layer by layer, quantized
            model = build_hf_model(spec.shape, dtype=spec.dtype, attention=attention)
        details["quantized_linears"] = quantize_decoder_linears(
            model, torch_dtype(spec.dtype), device
        )
        materialize_meta_tensors(model, device)
        details["trained"] = "embedding, RMSNorm weights and LM head (4-bit projections frozen)"
    else:
        with torch.device(device):  # random init straight on the device: seconds at 7B
            model = build_hf_model(spec.shape, dtype=spec.dtype, attention=attention)
        details["trained"] = "every parameter"
    if "recompute" in features:
        enable_recompute(model)
    if features & {"lora", "qlora"}:
        lora = spec.options["lora"]
        model = add_lora_adapters(model, lora)
        base = "NF4 double-quantized" if "qlora" in features else spec.dtype
        details["trained"] = (
            f"LoRA adapters only (rank {lora['rank']}, alpha {lora['alpha']}, on "
            f"{', '.join(lora['target_modules'])}); every base weight frozen ({base})"
        )
        details["lora"] = dict(lora)
    model.train()
    return model, details


def add_lora_adapters(model, lora: dict):
    """PEFT LoRA on the named projections; PEFT freezes every other parameter."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora["rank"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=list(lora["target_modules"]),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def element_count(parameter) -> int:
    """A packed 4-bit weight counts the elements it stands for."""
    shape = getattr(getattr(parameter, "quant_state", None), "shape", None)
    return shape.numel() if shape is not None else parameter.numel()


def parameter_counts(model) -> dict:
    """Parameters as the model holds them, and those of its matrix multiplies (every Linear: the
    projections, LoRA's A and B, the LM head), for the FLOP count."""
    total = trainable = matmul = matmul_trainable = 0
    for parameter in model.parameters():
        count = element_count(parameter)
        total += count
        trainable += count if parameter.requires_grad else 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            count = element_count(module.weight)
            matmul += count
            matmul_trainable += count if module.weight.requires_grad else 0
    return {
        "params_total": total,
        "params_trainable": trainable,
        "matmul_params": matmul,
        "matmul_params_trainable": matmul_trainable,
    }


def enable_recompute(model) -> None:
    """Activation checkpointing of every decoder layer, non-reentrant. transformers 5.23 renamed
    the switch (the old name still works there, with a deprecation warning); older 5.x only has
    the old one."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
