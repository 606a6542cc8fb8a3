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


def installed_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def flash_attn_package(device: str) -> tuple[str, str] | None:
    """The flash-attn build that runs here: (transformers' implementation name, what it is).
    flash-attn 4 (CuTe DSL kernels) needs Hopper or newer; flash-attn 2 runs from Ampere on."""
    if not device.startswith("cuda"):
        return None
    major, _ = torch.cuda.get_device_capability(device)
    fa4 = installed_version("flash-attn-4")
    if fa4 and major >= 9 and importlib.util.find_spec("flash_attn.cute"):
        return "flash_attention_4", f"flash-attn {fa4} (flash_attn.cute)"
    fa2 = installed_version("flash-attn") or installed_version("flash_attn")
    if fa2 and major >= 8:
        return "flash_attention_2", f"flash-attn {fa2}"
    return None


def attention_choice(features: frozenset[str], device: str) -> dict:
    """transformers' attention implementation and the kernel it runs. Plain (eager) attention
    without flash or sdpa, as the study's unfused baseline."""
    if "sdpa" in features:
        return {"attention": "sdpa", "attention_kernel": "torch SDPA, torch's kernel choice"}
    if "flash" not in features:
        return {"attention": "eager", "attention_kernel": "eager (matmul, softmax, matmul)"}
    package = flash_attn_package(device)
    if package:
        return {"attention": package[0], "attention_kernel": package[1]}
    return {
        "attention": "sdpa",
        "attention_kernel": "torch SDPA held to its flash kernel",
        "sdpa_backend": "flash",
    }


def attention_context(details: dict):
    """Hold SDPA to its flash kernel where asked, so a fallback to another kernel fails loudly
    instead."""
    if details.get("sdpa_backend") != "flash":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.FLASH_ATTENTION)


def adamw(parameters, spec: TrainSpec, device: str):
    """torch's AdamW: fused (one kernel per step) with the fused feature, else torch's default
    (foreach: a kernel per group of tensors on a GPU, a loop of tensors on the CPU)."""
    fused = "fused" in parse_method(spec.method)
    optimizer = torch.optim.AdamW(parameters, lr=spec.learning_rate, fused=fused or None)
    if fused:
        kind = "fused"
    elif optimizer.defaults.get("foreach") or device.startswith("cuda"):
        kind = "foreach"  # torch picks foreach when every parameter is on a GPU
    else:
        kind = "for-loop"
    return optimizer, f"torch.optim.AdamW ({kind})"


def compile_model(model, features: frozenset[str]) -> dict:
    """torch.compile of the model in place (its parameters and module names stay the same);
    the compile itself happens in the first warm-up step."""
    if "compile" not in features:
        return {"compile": None}
    model.compile()
    return {"compile": {"backend": "inductor", "mode": "default", "torch": torch.__version__}}


def compiled_graphs() -> int:
    """Graphs torch.compile made so far in this process."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def compile_cache_use() -> dict:
    """Inductor's on-disk cache: a graph found there skips most of its compile, so the compile
    time of a cell depends on what ran before it on the machine."""
    from torch._dynamo.utils import counters

    inductor = counters["inductor"]
    return {
        "fx_graph_cache_hits": int(inductor["fxgraph_cache_hit"]),
        "fx_graph_cache_misses": int(inductor["fxgraph_cache_miss"]),
    }


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
    details = attention_choice(features, device)
    attention = details["attention"]
    details["recompute"] = "recompute" in features
    torch.manual_seed(spec.seed)
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
    model.config.use_cache = False  # no KV cache while training (and no recompiles for it)
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
