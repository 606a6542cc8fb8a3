"""Training frameworks plug in by name behind one small interface (see base.py); which ones
exist is llmdissect.frameworks.FRAMEWORKS, each entry naming its class here."""

from __future__ import annotations

from importlib import import_module

from ...frameworks import FRAMEWORKS
from .base import Framework, Trainer


def framework_class(name: str) -> type[Framework]:
    try:
        module, _, cls = FRAMEWORKS[name].runner.partition(":")
    except KeyError:
        raise KeyError(
            f"unknown framework {name!r}; known: {', '.join(sorted(FRAMEWORKS))}"
        ) from None
    return getattr(import_module(module), cls)


def get_framework(name: str) -> Framework:
    return framework_class(name)()


__all__ = ["Framework", "Trainer", "framework_class", "get_framework"]
