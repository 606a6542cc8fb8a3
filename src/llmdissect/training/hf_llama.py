"""The HF Llama model with a method's features applied: attention kernel, recomputation, 4-bit
weights, LoRA adapters. Shared by every framework that trains the transformers model."""

from __future__ import annotations

import contextlib
import importlib.util

import torch

from ..methods import parse_method
from ..models import build_hf_model
from .spec import TrainSpec

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def quantize_decoder_linears(model, compute_dtype: torch.dtype) -> int:
    """Swap every projection of the decoder layers for a frozen NF4 (double-quantized) layer.

    The weights are quantized when the model moves to its device. Returns how many were swapped.
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
                )
                quantized.weight = bnb.nn.Params4bit(
                    child.weight.data,
                    requires_grad=False,
                    compress_statistics=True,
                    quant_type="nf4",
                )
                setattr(parent, name, quantized)
                swapped += 1
    return swapped


def build_training_model(spec: TrainSpec, device: str):
    """The model on its device, and a description of what was applied for the record."""
    features = parse_method(spec.method)
    attention = attention_choice(features, device)
    torch.manual_seed(spec.seed)
    with torch.device(device):  # random init straight on the device: seconds, not minutes, at 7B
        model = build_hf_model(spec.shape, dtype=spec.dtype, attention=attention)
    details = {"attention": attention, "recompute": "recompute" in features}
    if features & {"quant4", "qlora"}:
        swapped = quantize_decoder_linears(model, TORCH_DTYPES[spec.dtype])
        details["quantized_linears"] = swapped
        details["trained"] = "embedding, RMSNorm weights and LM head (4-bit projections frozen)"
    else:
        details["trained"] = "every parameter"
    model.to(device)
    if "recompute" in features:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if features & {"lora", "qlora"}:
        model = add_lora_adapters(model, spec.options["lora"])
        base = "NF4 double-quantized" if "qlora" in features else spec.dtype
        lora = spec.options["lora"]
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
