"""Plain PyTorch: the HF Llama model and torch AdamW, no distributed wrapper."""

from __future__ import annotations

from ...methods import parse_method
from ..hf_llama import (
    adamw,
    attention_context,
    build_training_model,
    compile_model,
    compiled_graphs,
    parameter_counts,
)
from ..spec import TrainSpec
from .base import Framework, Trainer, phase


class TorchNative(Framework):
    name = "torch"

    def build(self, spec: TrainSpec, device: str) -> Trainer:
        return TorchNativeTrainer(spec, device)


class TorchNativeTrainer(Trainer):
    def __init__(self, spec: TrainSpec, device: str):
        self.model, self.details = build_training_model(spec, device)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer, self.details["optimizer"] = adamw(trainable, spec, device)
        self.details.update(compile_model(self.model, parse_method(spec.method)))

    def step(self, input_ids, attention_mask, labels) -> float:
        with attention_context(self.details):
            with phase("forward"):
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
            with phase("backward"):
                out.loss.backward()
        with phase("optimizer"):
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return out.loss.detach().float().item()

    def parameter_counts(self) -> dict:
        return parameter_counts(self.model)

    def compiled_graphs(self) -> int | None:
        return compiled_graphs() if self.details["compile"] else None
