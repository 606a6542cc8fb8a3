"""Cells: one measured configuration each, with a readable, stable key that names its files."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SINGLE_PROCESS_FRAMEWORKS = {"torch"}


@dataclass(frozen=True)
class TrainingCell:
    stage: str  # pretrain | finetune
    platform: str
    model: str
    framework: str
    method: str
    world_size: int  # processes (GPUs) the cell trains on
    batch: str  # per-process batch as text, or "max" for the largest batch that fits

    @property
    def key(self) -> str:
        parts = [self.stage, self.platform, self.model, self.framework, self.method]
        return "/".join(parts) + f"/w{self.world_size}/b{self.batch}"

    def as_dict(self) -> dict:
        return asdict(self)


def training_cells(stage: str, platform: str, section: dict) -> list[TrainingCell]:
    """Every cell of a pre-training or fine-tuning section, in config order, each once."""
    cells = {}
    for model in section["models"]:
        for block in section["grid"]:
            for framework, methods in block["frameworks"].items():
                for method in methods:
                    for world_size in block.get("world_sizes", [1]):
                        for batch in block["batches"]:
                            cell = TrainingCell(
                                stage, platform, model, framework, method, world_size, str(batch)
                            )
                            cells.setdefault(cell.key, cell)
    return list(cells.values())
