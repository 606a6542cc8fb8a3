import os
import sys
from pathlib import Path

# The library travels with the workflow: rule scripts (local, conda or SLURM jobs) import it from src/.
SOURCE_DIR = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SOURCE_DIR)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in [SOURCE_DIR, os.getenv("PYTHONPATH")] if p)
)

from llmdissect.cells import (
    TrainingCell,
    config_cells,
    ladder_reference_key,
    section_models,
    serving_cell_pattern,
    training_cell_pattern,
)
from llmdissect.config import (
    ConfigError,
    check_config,
    drop_disabled_stages,
    load_schema,
    run_platforms,
)
from llmdissect.placement import cell_gpus, cell_thread_count
from llmdissect.rule_params import (
    ladder_measurement,
    model_shape,
    platform_rates,
    profile_measurement,
    serving_measurement,
    serving_prompts_params,
    training_measurement,
    training_samples_params,
)

# The whole config is checked before any job is planned: a refused config names each bad key.
drop_disabled_stages(config)
try:
    check_config(
        config,
        load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
    )
except ConfigError as error:
    sys.exit(f"llmdissect: {error}")

PLATFORMS = run_platforms(config)
# Every file of a cell sits under results/<kind>/<its key>: the keys' wildcard forms
TRAINING_CELL = training_cell_pattern()
SERVING_CELL = serving_cell_pattern()


def work_folder(pattern):
    """A cell's scratch folder (probe specs, outcomes, logs), from its wildcards."""
    return lambda w: f"results/work/{pattern.format(**dict(w.items()))}"


def platform_settings(w):
    return config["platforms"][w.platform]


def cell_gpu_count(w):
    return cell_gpus(platform_settings(w), int(w.world))


def cell_threads(w):
    """CPU threads of a measuring cell (its OpenMP, MKL and torch pools). Under SLURM,
    profiles/slurm's set-threads (cpus_per_task) wins."""
    given = workflow.global_resources.get("gpu")
    return cell_thread_count(
        workflow.global_resources["_cores"].value or os.cpu_count(),
        cell_gpu_count(w),
        given.value if given is not None else None,
    )


def weights_gpu_count(w):
    """Random weights are drawn on a GPU where there is one: it takes a GPU slot, so that no
    measuring cell shares the device with it."""
    return int(any(config["platforms"][p]["device"] == "cuda" for p in PLATFORMS))


def cpu_measure_slot(w):
    return 0 if cell_gpu_count(w) else 1


def scheduler_resources():
    """Partition and GPU model per platform, where the config names them (SLURM reads both;
    a local run ignores them)."""
    settings = [config["platforms"][p] for p in PLATFORMS]
    extra = {}
    if any("slurm_partition" in s for s in settings):
        extra["slurm_partition"] = lambda w: platform_settings(w)["slurm_partition"]
    if any("gpu_model" in s for s in settings):
        extra["gpu_model"] = lambda w: platform_settings(w).get("gpu_model", "")
    if any("gpus_per_node" in s for s in settings):
        extra["nodes"] = lambda w: nodes_for(w)
    return extra


def nodes_for(w):
    per_node = platform_settings(w).get("gpus_per_node")
    gpus = cell_gpu_count(w)
    return max(1, -(-gpus // per_node)) if per_node else 1


wildcard_constraints:
    batch=r"\d+|max",
    world=r"\d+",
    platform=r"[A-Za-z0-9_.-]+",
    model=r"[A-Za-z0-9_.-]+",
    framework=r"[A-Za-z0-9_-]+",
    method=r"[A-Za-z0-9_+-]+",


TRAINING_STAGES = [stage for stage in ("pretrain", "finetune") if stage in config]


def measured_cells():
    """Every cell of the config: pre-training, fine-tuning, serving, profiles, the ladder."""
    return config_cells(config, PLATFORMS)


def reused_records():
    """Cells whose records the import folders already hold (aggregate.reuse_imported)."""
    from llmdissect.resume import reusable_records

    if not config["aggregate"]["reuse_imported"]:
        return {}
    keys = [cell.key for cell in measured_cells()]
    return reusable_records(config["aggregate"]["import_dirs"], keys)


REUSED = reused_records()


def cells_to_measure():
    return [cell for cell in measured_cells() if cell.key not in REUSED]


def cell_record(cell):
    """Where a cell's record is read from: the import folder's when it is reused."""
    return REUSED.get(cell.key) or record_path(cell)


def largest_batch_record(w):
    """A profiled "max" cell runs at the batch its pre-training cell found. Marked ancient: a
    new search (more measured steps, say) re-profiles nothing; the profiled record names the
    batch it ran at."""
    if w.batch != "max":
        return []
    cell = TrainingCell(
        "pretrain", w.platform, w.model, w.framework, w.method, w.world, "max"
    )
    return ancient(cell_record(cell))


def ladder_batch_record(w):
    """A "max" ladder runs every rung at the batch its first rung's pre-training cell found
    (ancient, as for profiles: a new search re-measures no rung; each record names its batch).
    """
    if w.batch != "max":
        return []
    cell = TrainingCell(
        "ladder", w.platform, w.model, w.framework, w.method, 1, w.batch
    )
    key = ladder_reference_key(cell, config["ladder"])
    return ancient(REUSED.get(key) or f"results/records/{key}.json")


def engine_model_dir(engine, model):
    """Engines that load a checkpoint get random weights; the others make up their own."""
    template = config["engines"][engine]
    if template["kind"] == "transformers-serve" or template["loads_weights"]:
        return f"results/data/{model}/weights"
    return f"results/data/{model}/model"


def record_path(cell):
    return f"results/records/{cell.key}.json"


def measured_records():
    return [record_path(cell) for cell in cells_to_measure()]


def imported_records():
    """Records measured elsewhere (reference/<platform>/, another cluster's results)."""
    from llmdissect.report.tidy import find_records

    return [str(p) for p in find_records(config["aggregate"]["import_dirs"])]


def data_models():
    gridded = [*TRAINING_STAGES, "profile"]
    models = [m for s in gridded if s in config for m in section_models(config[s])]
    models += config["ladder"]["models"] if "ladder" in config else []
    models += config["serve"]["models"] if "serve" in config else []
    return list(dict.fromkeys(models))


def final_targets():
    return [
        *expand("results/data/{model}/prompts.jsonl", model=data_models()),
        *TABLES,
        *FIGURES,
        "results/tidy/metrics.parquet",
        "results/summary.md",
    ]
