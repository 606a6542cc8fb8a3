"""Cells: one measured configuration each, with a readable, stable key that names its files."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainingCell:
    stage: str  # pretrain | finetune
    platform: str
    model: str
    framework: str
    method: str
    batch: str  # an integer as text, or "max" for the largest batch that fits

    @property
    def key(self) -> str:
        return (
            "/".join([self.stage, self.platform, self.model, self.framework, self.method])
            + f"/b{self.batch}"
        )

    def as_dict(self) -> dict:
        return asdict(self)


def training_cells(stage: str, platform: str, section: dict) -> list[TrainingCell]:
    """Every cell of a pre-training or fine-tuning config section, in config order."""
    return [
        TrainingCell(stage, platform, model, framework, method, str(batch))
        for model in section["models"]
        for framework, methods in section["frameworks"].items()
        for method in methods
        for batch in section["batches"]
    ]
