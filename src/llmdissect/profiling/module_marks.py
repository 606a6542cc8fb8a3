"""Profiler ranges around the modules of a decoder model, named by the module's role.

Forward hooks open a `module.<role>` range when a module starts and close it when it returns, so
every operator (and, through its launch, every kernel) of the forward pass sits inside the ranges
of the modules that ran it. A recomputed forward (activation checkpointing) fires the same hooks
inside the backward pass. The loss is a function, not a module, in both model families: its
callable is wrapped instead. Roles come from class and attribute names, which hold across the
transformers, PEFT, bitsandbytes and Megatron-core classes, not from kernel names.
"""

from __future__ import annotations

import contextlib
import functools

MODULE_PREFIX = "module."
# Table VI's rows, outermost first; a module whose role is None gets no range of its own.
ROLES = (
    "decoder_stack",  # the layers with what the model does around them (masks, positions)
    "embedding",
    "decoder_layer",
    "attention",
    "core_attention",
    "mlp",
    "rmsnorm",
    "linear",
    "silu",
    "rotary",
    "lm_head",
    "loss",
    "parameter_gradients",  # accumulation, the framework's hooks on it, its gradient buffers
)
LOSS_CALLABLES = ("loss_function", "compute_language_model_loss")  # transformers, Megatron-core


def module_role(attribute: str, module) -> str | None:
    """The role of a module from its attribute name in its parent and its class name."""
    cls = type(module).__name__
    if attribute in ("lm_head", "output_layer"):
        return "lm_head"
    if hasattr(module, "layers") and not hasattr(module, "lm_head"):
        return "decoder_stack"  # transformers' LlamaModel, Megatron-core's TransformerBlock
    if "Embedding" in cls:
        return "rotary" if "Rotary" in cls else "embedding"
    if cls.endswith("DecoderLayer") or cls == "TransformerLayer":
        return "decoder_layer"
    if "DotProductAttention" in cls:
        return "core_attention"
    if cls.endswith("Attention"):
        return "attention"
    if cls.endswith("MLP"):
        return "mlp"
    if "Norm" in cls:
        return "rmsnorm"
    if "Linear" in cls:
        return "linear"
    if "SiLU" in cls:
        return "silu"
    return None


def _range(name: str):
    import torch

    return torch.profiler.record_function(MODULE_PREFIX + name)


@contextlib.contextmanager
def module_ranges(root):
    """Marks the modules under `root` while the context is open; hooks are removed after."""
    handles, wrapped = [], []
    try:
        for path, module in root.named_modules():
            role = module_role(path.rsplit(".", 1)[-1], module)
            if role is not None:
                handles += _range_hooks(module, role)
        for module in root.modules():
            for name in LOSS_CALLABLES:
                if hasattr(type(module), name):
                    wrapped.append((module, _marked_loss(module, name)))
            if "_gradient_checkpointing_func" in vars(module):
                wrapped.append((module, _marked_recompute(module, module_role("", module))))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module, before in reversed(wrapped):  # a module wrapped twice: undo the last first
            for key in [k for k in vars(module) if k not in before]:
                del module.__dict__[key]
            module.__dict__.update(before)


def _range_hooks(module, role: str) -> list:
    open_ranges = []

    def enter(_module, _args):
        open_ranges.append(_range(role).__enter__())

    def leave(_module, _args, _output):
        open_ranges.pop().__exit__(None, None, None)

    # first in, last out: hooks of the framework (ZeRO-3's parameter gathering and release)
    # run inside the module's range; always_call: a recompute that stops early (checkpoint)
    # raises out of forward
    return [
        module.register_forward_pre_hook(enter, prepend=True),
        module.register_forward_hook(leave, always_call=True),
    ]


def _marked_recompute(module, role: str | None) -> dict:
    """transformers checkpoints a layer's forward, not its call, so the hooks stay outside the
    recompute: the checkpointed function gets the layer's range itself."""
    before = dict(vars(module))
    checkpoint = module._gradient_checkpointing_func

    def marked_checkpoint(function, *args, **kwargs):
        def marked(*inner_args, **inner_kwargs):
            with _range(role or "decoder_layer"):
                return function(*inner_args, **inner_kwargs)

        return checkpoint(marked, *args, **kwargs)

    module._gradient_checkpointing_func = marked_checkpoint
    return before


def _marked_loss(module, name: str) -> dict:
    """Puts the module's loss callable inside a `module.loss` range; returns the instance
    attributes as they were, to restore them (a property setter may store it elsewhere)."""
    before = dict(vars(module))
    original = getattr(module, name)

    @functools.wraps(original)
    def marked(*args, **kwargs):
        with _range("loss"):
            return original(*args, **kwargs)

    setattr(module, name, marked)
    return before
