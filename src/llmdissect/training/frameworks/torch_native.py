"""Plain PyTorch: the HF Llama model and torch AdamW, no distributed wrapper."""

from __future__ import annotations

import torch

from ...models import build_hf_model
from ..spec import TrainSpec
from .base import Framework, Trainer


class TorchNative(Framework):
    name = "torch"
    methods = {
        "baseline": "HF Llama, torch AdamW, every parameter trained",
        "recompute": "baseline with activation recomputation (gradient checkpointing per layer)",
    }

    def build(self, spec: TrainSpec) -> Trainer:
        return TorchNativeTrainer(spec)


class TorchNativeTrainer(Trainer):
    def __init__(self, spec: TrainSpec):
        torch.manual_seed(spec.seed)
        self.model = build_hf_model(spec.shape, dtype=spec.dtype, attention="sdpa").to(spec.device)
        if spec.method == "recompute":
            self.model.gradient_checkpointing_enable()
        self.model.train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=spec.learning_rate)
        self.details = {
            "attention": "sdpa",
            "optimizer": "torch.optim.AdamW",
            "recompute": spec.method == "recompute",
            "trained": "every parameter",
        }

    def step(self, input_ids, attention_mask, labels) -> float:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        out.loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return out.loss.detach().float().item()

    def parameter_counts(self) -> dict:
        params = list(self.model.parameters())
        return {
            "params_total": sum(p.numel() for p in params),
            "params_trainable": sum(p.numel() for p in params if p.requires_grad),
        }
