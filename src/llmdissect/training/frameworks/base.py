"""The interface every training framework offers to the shared loop."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..spec import TrainSpec


class Trainer(ABC):
    """One model, optimizer and method, ready to run steps on a device."""

    details: dict  # what actually ran (attention kernel, precision ...), copied into the record

    @abstractmethod
    def step(self, input_ids, attention_mask, labels) -> float:
        """Forward, backward and optimizer update on one batch; returns the loss."""

    def parameter_counts(self) -> dict:
        return {}


class Framework(ABC):
    name: str
    methods: dict[str, str]  # method name -> what it does, shown in errors and the README

    def infeasible_reason(self, spec: TrainSpec) -> str | None:
        """Why this cell cannot run here at all (not an OOM), or None."""
        if spec.method not in self.methods:
            known = ", ".join(sorted(self.methods))
            return f"framework {self.name!r} has no method {spec.method!r} (it has: {known})"
        return None

    @abstractmethod
    def build(self, spec: TrainSpec) -> Trainer:
        """Build model and optimizer on spec.device; may raise an out-of-memory error."""
