"""Training methods as sets of features: "zero3+offload+recompute" is ZeRO-3 with offload and
activation recomputation. "baseline" is no feature. Kept free of torch: the config check uses it."""

from __future__ import annotations

from .frameworks import FRAMEWORKS

FEATURES = {
    "zero2": "ZeRO stage 2: optimizer state and gradients partitioned across data-parallel ranks",
    "zero3": "ZeRO stage 3: parameters partitioned too",
    "offload": "optimizer state to CPU memory (ZeRO-2); parameters too (ZeRO-3)",
    "recompute": "activation recomputation: each decoder layer recomputed in the backward pass",
    "quant4": "decoder projections stored 4-bit NF4 with double quantization, frozen; "
    "embedding, norms and LM head trained",
    "flash": "FlashAttention: the flash-attn package where it runs (flash-attn 4 on Hopper and "
    "newer GPUs, else flash-attn 2), else torch SDPA held to its flash kernel",
    "sdpa": "torch scaled_dot_product_attention with torch's own kernel choice (beyond the study)",
    "fused": "AdamW as one fused kernel per step, not a loop of small ones (beyond the study)",
    "compile": "torch.compile of the model, compiled in the warm-up steps (beyond the study)",
    "lora": "PEFT LoRA adapters trained on frozen base weights in the run's dtype",
    "qlora": "QLoRA: PEFT LoRA adapters trained on frozen NF4 (double-quantized) base weights",
}
ADAPTERS = {"lora", "qlora"}  # what makes a method a fine-tuning one


def parse_method(method: str) -> frozenset[str]:
    return frozenset() if method == "baseline" else frozenset(method.split("+"))


def method_problem(framework: str, method: str) -> str | None:
    """Why a framework cannot run a method (unknown or contradictory features), or None."""
    if framework not in FRAMEWORKS:
        return f"unknown framework {framework!r} (known: {', '.join(sorted(FRAMEWORKS))})"
    features = parse_method(method)
    unknown = sorted(features - set(FEATURES))
    if unknown or not features and method != "baseline":
        known = ", ".join(sorted(FEATURES))
        names = ", ".join(unknown) or repr(method)
        return f"method {method!r}: unknown feature {names} (known: {known})"
    unsupported = sorted(features - FRAMEWORKS[framework].features)
    if unsupported:
        why_not = FRAMEWORKS[framework].why_not
        reasons = "; ".join(why_not[f] for f in unsupported if f in why_not)
        offered = f"framework {framework!r} does not offer {', '.join(unsupported)}"
        return f"method {method!r}: {offered}" + (f" ({reasons})" if reasons else "")
    if {"flash", "sdpa"} <= features:
        return f"method {method!r}: flash and sdpa are two attention kernels; name one"
    if {"zero2", "zero3"} <= features:
        return f"method {method!r}: zero2 and zero3 exclude each other"
    if "offload" in features and not features & {"zero2", "zero3"}:
        return f"method {method!r}: offload needs zero2 or zero3"
    if {"lora", "qlora"} <= features:
        return f"method {method!r}: lora and qlora exclude each other"
    if "quant4" in features and features & ADAPTERS:
        return f"method {method!r}: 4-bit base weights with adapters is qlora; drop quant4"
    if {"qlora", "zero3"} <= features:
        # ZeRO-3 partitions parameters as flat bf16 tensors; packed 4-bit weights are not that
        return f"method {method!r}: ZeRO-3 cannot partition 4-bit weights; use zero2 with qlora"
    return None


def stage_problem(stage: str, method: str) -> str | None:
    """Fine-tuning trains adapters; pre-training trains the model itself."""
    adapters = parse_method(method) & ADAPTERS
    if stage == "finetune" and not adapters:
        return f"method {method!r}: a fine-tuning method needs lora or qlora"
    if stage == "pretrain" and adapters:
        return f"method {method!r}: {', '.join(sorted(adapters))} belongs under finetune"
    return None
