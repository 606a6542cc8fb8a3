"""DeepSpeed: the HF Llama model inside a DeepSpeed engine, ZeRO stage and offload per method."""

from __future__ import annotations

import torch

from ...methods import parse_method
from ..hf_llama import (
    attention_context,
    build_training_model,
    compiled_graphs,
    parameter_counts,
)
from ..spec import TrainSpec
from .base import Framework, Trainer, phase


class DeepSpeed(Framework):
    name = "deepspeed"

    def build(self, spec: TrainSpec, device: str) -> Trainer:
        return DeepSpeedTrainer(spec, device)


def deepspeed_config(spec: TrainSpec, features: frozenset[str], on_gpu: bool) -> dict:
    stage = 3 if "zero3" in features else 2 if "zero2" in features else 0
    hidden = spec.shape.hidden_size
    # Buckets sized to the model, as the HF Trainer's "auto" values do; DeepSpeed's fixed
    # defaults (5e8 elements, 2 GB in fp32) would dwarf a small model's memory.
    zero: dict = {
        "stage": stage,
        "reduce_bucket_size": hidden * hidden,
        "allgather_bucket_size": max(hidden * hidden, 5 * 10**7),
    }
    if stage == 3:
        zero["stage3_prefetch_bucket_size"] = int(0.9 * hidden * hidden)
        zero["stage3_param_persistence_threshold"] = 10 * hidden
    if "offload" in features:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": on_gpu}
        if stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": on_gpu}
    config = {
        "train_micro_batch_size_per_gpu": spec.batch_size,
        "gradient_accumulation_steps": 1,
        "zero_optimization": zero,
        "bf16": {"enabled": spec.dtype == "bfloat16"},
        "fp16": {"enabled": spec.dtype == "float16"},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if on_gpu:
        # DeepSpeed's own AdamW: fused on the GPU, its CPU Adam when the optimizer is offloaded.
        config["optimizer"] = {"type": "AdamW", "params": {"lr": spec.learning_rate}}
    else:
        # On the CPU a torch AdamW avoids compiling DeepSpeed's C++ ops.
        config["zero_force_ds_cpu_optimizer"] = False
    return config


class DeepSpeedTrainer(Trainer):
    def __init__(self, spec: TrainSpec, device: str):
        import deepspeed

        features = parse_method(spec.method)
        on_gpu = device.startswith("cuda")
        model, self.details = build_training_model(spec, device)
        config = deepspeed_config(spec, features, on_gpu)
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.counts = parameter_counts(model)  # before ZeRO-3 partitions the parameters
        client_optimizer = None if on_gpu else torch.optim.AdamW(trainable, lr=spec.learning_rate)
        self.engine, *_ = deepspeed.initialize(
            model=model, model_parameters=trainable, optimizer=client_optimizer, config=config
        )
        if "compile" in features:
            self.engine.compile()  # DeepSpeed's own wrapper of torch.compile, hooks kept
        self.details.update(
            compile={"backend": "inductor", "mode": "default", "through": "engine.compile()"}
            if "compile" in features
            else None,
            zero_stage=config["zero_optimization"]["stage"],
            offload="offload" in features,
            optimizer=type(self.engine.optimizer).__name__,
            deepspeed_config=config,
        )

    def step(self, input_ids, attention_mask, labels) -> float:
        with attention_context(self.details):
            with phase("forward"):
                out = self.engine(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
            with phase("backward"):
                self.engine.backward(out.loss)
        with phase("optimizer"):
            self.engine.step()
        return out.loss.detach().float().item()

    def parameter_counts(self) -> dict:
        return self.counts

    def compiled_graphs(self) -> int | None:
        return compiled_graphs() if self.details["compile"] else None

    def root_module(self):
        return self.engine.module
