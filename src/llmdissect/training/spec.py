"""What one training probe runs: everything a fresh process needs, as plain JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..models import ModelShape


@dataclass
class TrainSpec:
    shape: ModelShape
    framework: str
    method: str
    batch_size: int
    samples_path: str
    device: str = "cpu"
    dtype: str = "float32"
    warmup_steps: int = 3  # the schema's defaults (workflow/schemas/config.schema.yaml)
    measured_steps: int = 20
    learning_rate: float = 1e-4
    seed: int = 0
    memory_limit_gb: float | None = None
    world_size: int = 1
    # CPU threads of the whole cell, shared by its processes; None - whatever the process inherits
    cpu_threads: int | None = None
    options: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainSpec:
        raw = json.loads(text)
        raw["shape"] = ModelShape(**raw["shape"])
        return cls(**raw)

    def with_batch(self, batch_size: int, warmup_steps: int, measured_steps: int) -> TrainSpec:
        raw = asdict(self)
        raw.update(batch_size=batch_size, warmup_steps=warmup_steps, measured_steps=measured_steps)
        raw["shape"] = self.shape
        return TrainSpec(**raw)

    def write(self, path: Path) -> None:
        Path(path).write_text(self.to_json())


def training_options(settings: dict, stage: str, framework: str) -> dict:
    """Framework- and stage-specific settings a probe needs: Megatron's parallel sizes, LoRA."""
    options = dict(settings["megatron"]) if framework == "megatron" else {}
    if stage == "finetune":
        options["lora"] = dict(settings["lora"])
    return options


def stage_spec(
    shape: ModelShape,
    framework: str,
    method: str,
    samples_path: str,
    settings: dict,
    platform: dict,
    seed: int,
    world_size: int,
    options: dict,
    cpu_threads: int | None = None,
) -> TrainSpec:
    """The spec of a cell from its stage's config section and its platform (batch set later)."""
    return TrainSpec(
        shape=shape,
        framework=framework,
        method=method,
        batch_size=1,
        samples_path=samples_path,
        device=platform["device"],
        dtype=settings["dtype"],
        warmup_steps=settings["warmup_steps"],
        measured_steps=settings["measured_steps"],
        learning_rate=settings["learning_rate"],
        seed=seed,
        memory_limit_gb=platform["memory_limit_gb"],
        world_size=world_size,
        cpu_threads=cpu_threads,
        options=options,
    )


def measurement_spec(
    measurement: dict,
    framework: str,
    method: str,
    samples_path: str,
    world_size: int,
    options: dict,
    cpu_threads: int | None,
) -> TrainSpec:
    """The spec of a cell from its rule's params (rule_params: training or profile measurement)."""
    return stage_spec(
        ModelShape(**measurement["model_shape"]),
        framework,
        method,
        samples_path,
        measurement,
        measurement["platform"],
        measurement["seed"],
        world_size,
        options,
        cpu_threads=cpu_threads,
    )


def record_settings(spec: TrainSpec, samples_sha256: str) -> dict:
    """What a training record says it ran with."""
    return {
        "model_shape": spec.shape.as_dict(),
        "device": spec.device,
        "dtype": spec.dtype,
        "warmup_steps": spec.warmup_steps,
        "measured_steps": spec.measured_steps,
        "learning_rate": spec.learning_rate,
        "memory_limit_gb": spec.memory_limit_gb,
        "data_sha256": samples_sha256,
        "world_size": spec.world_size,
        "cpu_threads": spec.cpu_threads,
    }
