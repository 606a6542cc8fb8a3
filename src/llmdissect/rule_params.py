"""What each rule's `params` hold: exactly what its job's output depends on, in one canonical form.

Snakemake runs a job again when its params differ from the last run's, compared as text. So a
measuring cell's params hold the settings its record keeps and nothing else: not the whole config
section (another grid block, another model would re-measure every cell), not the platform's
description, and with keys in sorted order (a config saved in another key order must compare
equal). What only decides how a job runs (time limit, retries, threads) is read from the config
by the job itself and re-measures nothing.
"""

from __future__ import annotations

from .cells import TrainingCell, cell_repeats
from .models import shape_from_config

# read by the job, never part of what it measures: time limits, retries, when to call it failed
RUN_POLICY_KEYS = ("probe_timeout_s", "probe_retries")
ENGINE_POLICY_KEYS = ("startup_timeout_s",)
WORKLOAD_POLICY_KEYS = ("request_timeout_s", "idle_timeout_s", "max_failed_share")
# platform keys that describe it or that only the report reads: editing them re-measures nothing
PLATFORM_LABELS = ("description", "memory_bandwidth_gbs", "price_per_gpu_hour", "price_per_hour")


def canonical(value):
    """Nested dicts with their keys sorted (their text is then the same in any input order)."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def model_shape(config: dict, model: str) -> dict:
    return canonical(shape_from_config(model, config["model_shapes"]).as_dict())


def platform_measured(config: dict, platform: str) -> dict:
    settings = config["platforms"][platform]
    return canonical({k: v for k, v in settings.items() if k not in PLATFORM_LABELS})


def platform_rates(config: dict) -> dict:
    """Per platform, the report's own numbers: memory bandwidth and prices (none re-measures)."""
    return {
        name: {key: settings[key] for key in PLATFORM_LABELS[1:] if key in settings}
        for name, settings in config["platforms"].items()
    }


def training_samples_params(config: dict, model: str) -> dict:
    data = config["data"]
    return canonical(
        {
            "seed": config["seed"],
            "count": data["train_samples"],
            "mean_len": data["seq_len"],
            "spread": data["seq_len_spread"],
            "vocab_size": model_shape(config, model)["vocab_size"],
        }
    )


def serving_prompts_params(config: dict, model: str) -> dict:
    data = config["data"]
    return canonical(
        {
            "seed": config["seed"],
            "count": data["serving_prompts"],
            "prompt_len": data["prompt_len"],
            "vocab_size": model_shape(config, model)["vocab_size"],
        }
    )


def training_measurement(config: dict, stage: str, w) -> dict:
    """A pre-training or fine-tuning cell: its stage's step settings, its framework's and its
    batch mode's own settings, its model's shape, its platform."""
    section = config[stage]
    measurement = {
        "stage": stage,
        "seed": config["seed"],
        "model_shape": model_shape(config, w.model),
        "platform": platform_measured(config, w.platform),
        **{k: section[k] for k in ("dtype", "warmup_steps", "measured_steps", "learning_rate")},
    }
    if w.framework == "megatron":
        measurement["megatron"] = section["megatron"]
    if stage == "finetune":
        measurement["lora"] = section["lora"]
    if w.batch == "max":  # how the search runs (its method) is policy: a change re-searches nothing
        search = section["max_batch_search"]
        measurement["max_batch_search"] = {k: v for k, v in search.items() if k != "method"}
    measurement.update(repeats_of(config, stage, w))
    return canonical(measurement)


def repeats_of(config: dict, stage: str, w) -> dict:
    """{"repeats": n} for a cell measured more than once; nothing otherwise, so that a cell
    measured once keeps the parameters (and the record) it had before repeats existed."""
    cell = TrainingCell(stage, w.platform, w.model, w.framework, w.method, int(w.world), w.batch)
    repeats = cell_repeats(config[stage], cell)
    return {"repeats": repeats} if repeats > 1 else {}


def profile_measurement(config: dict, w) -> dict:
    """A profiled cell: pre-training's dtype and learning rate (and Megatron's parallel sizes),
    the profile's own step counts. Its batch, for "max", comes from the pre-training record."""
    pretrain, profile = config["pretrain"], config["profile"]
    measurement = {
        "stage": "profile",
        "seed": config["seed"],
        "model_shape": model_shape(config, w.model),
        "platform": platform_measured(config, w.platform),
        "dtype": pretrain["dtype"],
        "learning_rate": pretrain["learning_rate"],
        **{k: profile[k] for k in ("warmup_steps", "measured_steps", "active_steps")},
    }
    if w.framework == "megatron":
        measurement["megatron"] = pretrain["megatron"]
    measurement.update(repeats_of(config, "profile", w))
    return canonical(measurement)


def ladder_measurement(config: dict, w) -> dict:
    """A ladder rung: pre-training's dtype and learning rate, the ladder's own step counts. Its
    batch, for "max", comes from the first rung's pre-training record."""
    pretrain, ladder = config["pretrain"], config["ladder"]
    measurement = {
        "stage": "ladder",
        "seed": config["seed"],
        "model_shape": model_shape(config, w.model),
        "platform": platform_measured(config, w.platform),
        "dtype": pretrain["dtype"],
        "learning_rate": pretrain["learning_rate"],
        **{k: ladder[k] for k in ("warmup_steps", "measured_steps")},
    }
    if w.framework == "megatron":
        measurement["megatron"] = pretrain["megatron"]
    return canonical(measurement)


def serving_measurement(config: dict, w) -> dict:
    """A serving cell: its one engine template, its one workload, its model and platform."""
    engine = config["engines"][w.engine]
    workload = config["serve"]["workloads"][w.workload]
    return canonical(
        {
            "model_shape": model_shape(config, w.model),
            "platform": platform_measured(config, w.platform),
            "engine": {k: v for k, v in engine.items() if k not in ENGINE_POLICY_KEYS},
            # which engines run it is in the cell's name, not in what it measures
            "workload": {
                k: v for k, v in workload.items() if k not in (*WORKLOAD_POLICY_KEYS, "engines")
            },
        }
    )


def serving_policy(config: dict, w) -> tuple[dict, dict]:
    """The engine's and the workload's time limits and failure threshold."""
    engine = config["engines"][w.engine]
    workload = config["serve"]["workloads"][w.workload]
    return (
        {k: engine[k] for k in ENGINE_POLICY_KEYS if k in engine},
        {k: workload[k] for k in WORKLOAD_POLICY_KEYS if k in workload},
    )


def run_policy(config: dict, stage: str) -> dict:
    """Time limit and retries of a training, profiled or ladder cell's probes (the last two use
    pre-training's)."""
    section = config["pretrain" if stage in ("profile", "ladder") else stage]
    policy = {key: section[key] for key in RUN_POLICY_KEYS}
    policy["search_method"] = section["max_batch_search"]["method"]
    return policy
