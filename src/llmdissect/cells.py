"""Cells: one measured configuration each, with a readable, stable key that names its files."""

from __future__ import annotations

from dataclasses import asdict, dataclass


def training_cell_pattern(stage: str = "{stage}") -> str:
    """A training cell's key with wildcards: the one layout of its files (records, logs,
    benchmarks, work folders), in rules and library alike."""
    return stage + "/{platform}/{model}/{framework}/{method}/w{world}/b{batch}"


def serving_cell_pattern() -> str:
    return "serve/{platform}/{model}/{engine}/{workload}/w{world}"


@dataclass(frozen=True)
class TrainingCell:
    stage: str  # pretrain | finetune | profile | ladder
    platform: str
    model: str
    framework: str
    method: str
    world_size: int  # processes (GPUs) the cell trains on
    batch: str  # per-process batch as text, or "max" for the largest batch that fits

    @property
    def key(self) -> str:
        return training_cell_pattern(self.stage).format(
            platform=self.platform,
            model=self.model,
            framework=self.framework,
            method=self.method,
            world=self.world_size,
            batch=self.batch,
        )

    def as_dict(self) -> dict:
        return asdict(self)


def section_model_keys(stage: str, section: dict) -> list[tuple[str, str]]:
    """(config key, model) for every model a section names, in its list or in a grid block."""
    keys = [(f"{stage}.models[{i}]", model) for i, model in enumerate(section["models"])]
    for b, block in enumerate(section["grid"]):
        models = block.get("models", [])
        keys += [(f"{stage}.grid[{b}].models[{i}]", model) for i, model in enumerate(models)]
    return keys


def section_models(section: dict) -> list[str]:
    """The section's models, then those only some grid blocks name, each once, in config order."""
    return list(dict.fromkeys(model for _, model in section_model_keys("", section)))


def training_cells(stage: str, platform: str, section: dict) -> list[TrainingCell]:
    """Every cell of a pre-training, fine-tuning or profiling section, in config order, each
    once. A grid block with its own `models` applies to those models only."""
    cells = {}
    for cell, _ in block_cells(stage, platform, section):
        cells.setdefault(cell.key, cell)
    return list(cells.values())


def block_cells(stage: str, platform: str, section: dict):
    """(cell, its grid block) for every block that names the cell."""
    for model in section_models(section):
        for block in section["grid"]:
            if model not in block.get("models", section["models"]):
                continue
            for framework, methods in block["frameworks"].items():
                for method in methods:
                    for world_size in block.get("world_sizes", [1]):
                        for batch in block["batches"]:
                            cell = TrainingCell(
                                stage, platform, model, framework, method, world_size, str(batch)
                            )
                            yield cell, block


def cell_repeats(section: dict, cell: TrainingCell) -> int:
    """How often the cell is measured: the most any block naming it asks for (its `repeats`,
    else the section's)."""
    asked = [
        block.get("repeats", section.get("repeats", 1))
        for other, block in block_cells(cell.stage, cell.platform, section)
        if other.key == cell.key
    ]
    return max(asked, default=1)


def ladder_cells(platform: str, section: dict) -> list[TrainingCell]:
    """A ladder's rungs per model, in rung order, one process each, all at the ladder's batch."""
    framework, batch = section["framework"], str(section["batch"])
    return [
        TrainingCell("ladder", platform, model, framework, rung, 1, batch)
        for model in section["models"]
        for rung in section["rungs"]
    ]


def ladder_reference_key(cell: TrainingCell, section: dict) -> str:
    """The pre-training cell whose largest batch a "max" ladder runs at: its first rung's."""
    first = TrainingCell(
        "pretrain", cell.platform, cell.model, cell.framework, section["rungs"][0], 1, "max"
    )
    return first.key


@dataclass(frozen=True)
class ServingCell:
    platform: str
    model: str
    engine: str  # a launch template's name under `engines:`
    workload: str  # a workload's name under `serve.workloads`
    world_size: int  # tensor-parallel GPUs of the engine

    @property
    def key(self) -> str:
        return serving_cell_pattern().format(
            platform=self.platform,
            model=self.model,
            engine=self.engine,
            workload=self.workload,
            world=self.world_size,
        )

    def as_dict(self) -> dict:
        # engine and workload fill the columns that training cells call framework and method
        return {
            "stage": "serve",
            "platform": self.platform,
            "model": self.model,
            "framework": self.engine,
            "method": self.workload,
            "world_size": self.world_size,
            "batch": "all",
        }


def serving_cells(platform: str, section: dict, engines: dict) -> list[ServingCell]:
    return [
        ServingCell(platform, model, engine, workload, engines[engine]["tensor_parallel_size"])
        for model in section["models"]
        for engine in section["engines"]
        for workload, settings in section["workloads"].items()
        if engine in settings.get("engines", section["engines"])
    ]


def config_cells(config: dict, platforms: list[str]) -> list:
    """Every cell a checked config measures, per platform: pre-training, fine-tuning, serving,
    profiles, then the ladder (the DAG's order)."""
    cells = []
    for platform in platforms:
        for stage in ("pretrain", "finetune"):
            if stage in config:
                cells += training_cells(stage, platform, config[stage])
        if "serve" in config:
            cells += serving_cells(platform, config["serve"], config["engines"])
        if "profile" in config:
            cells += training_cells("profile", platform, config["profile"])
        if "ladder" in config:
            cells += ladder_cells(platform, config["ladder"])
    return cells
