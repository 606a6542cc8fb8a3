"""Training frameworks plug in by name behind one small interface (see base.py)."""

from __future__ import annotations

from .base import Framework, Trainer
from .deepspeed_engine import DeepSpeed
from .megatron_gpt import Megatron
from .torch_native import TorchNative

FRAMEWORKS: dict[str, type[Framework]] = {
    TorchNative.name: TorchNative,
    DeepSpeed.name: DeepSpeed,
    Megatron.name: Megatron,
}


def get_framework(name: str) -> Framework:
    try:
        return FRAMEWORKS[name]()
    except KeyError:
        raise KeyError(
            f"unknown framework {name!r}; known: {', '.join(sorted(FRAMEWORKS))}"
        ) from None


__all__ = ["FRAMEWORKS", "Framework", "Trainer", "get_framework"]
