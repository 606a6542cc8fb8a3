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
    warmup_steps: int = 2
    measured_steps: int = 10
    learning_rate: float = 1e-4
    seed: int = 0
    memory_limit_gb: float | None = None
    world_size: int = 1
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
