"""What a config edit re-measures, planned by a dry run after the test DAG finished: only the cells
whose measurement changed (and the aggregation downstream), never the finished others."""

import copy
import re

import pytest
import yaml
from conftest import run_snakemake as snakemake

from llmdissect.rule_params import canonical

pytestmark = pytest.mark.workflow

MEASURING_RULES = {"training_cell", "profile_cell", "ladder_cell", "serving_cell"}
DATA_RULES = {"model_card", "model_weights", "training_samples", "serving_prompts"}
RULE_LINE = re.compile(r"^(?:local)?rule (\w+):$")


def planned_outputs(output: str) -> dict[str, set[str]]:
    """Rule -> the first output of each job a dry run plans."""
    planned: dict[str, set[str]] = {}
    rule = None
    for line in output.splitlines():
        if match := RULE_LINE.match(line.strip()):
            rule = match.group(1)
        elif rule and line.strip().startswith("output:"):
            first = line.split(":", 1)[1].split(",")[0].strip()
            planned.setdefault(rule, set()).add(first)
            rule = None
    return planned


def dry_run_with(run, config: dict) -> dict[str, set[str]]:
    edited = run / "edited.yaml"
    edited.write_text(yaml.safe_dump(config, sort_keys=False))
    done = snakemake(run, "-n", "--configfile", str(edited))
    assert done.returncode == 0, done.stderr[-3000:]
    return planned_outputs(done.stdout + done.stderr)


def measured(planned: dict[str, set[str]]) -> set[str]:
    return {path for rule in MEASURING_RULES | DATA_RULES for path in planned.get(rule, ())}


def reversed_keys(value):
    """The same config with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


PRETRAIN = "results/records/pretrain/cpu/micro"


def load_test_config(repo) -> dict:
    with open(repo / "tests/config/test.yaml") as f:
        return copy.deepcopy(yaml.safe_load(f))


def test_a_new_grid_block_plans_only_its_cell(finished_run, repo):
    config = load_test_config(repo)
    config["pretrain"]["grid"].append({"frameworks": {"torch": ["recompute"]}, "batches": [2]})
    planned = dry_run_with(finished_run, config)
    assert measured(planned) == {f"{PRETRAIN}/torch/recompute/w1/b2.json"}
    assert "render_tables" in planned  # the tables follow


def test_a_new_workload_plans_only_its_serving_cells(finished_run, repo):
    config = load_test_config(repo)
    config["serve"]["workloads"]["paced"] = {"arrivals": "poisson", "rate": 4, "max_new_tokens": 8}
    planned = dry_run_with(finished_run, config)
    assert measured(planned) == {
        f"results/records/serve/cpu/tiny/{engine}/paced/w1.json"
        for engine in ("vllm-cpu", "transformers")
    }


def test_which_engines_run_a_workload_is_no_measurement(finished_run, repo):
    """Naming a workload's engines (all of them here) plans nothing; dropping one plans nothing
    either: its cell is left out, its finished record untouched."""
    config = load_test_config(repo)
    config["serve"]["workloads"]["burst"]["engines"] = ["vllm-cpu", "transformers"]
    assert measured(dry_run_with(finished_run, config)) == set()
    config["serve"]["workloads"]["burst"]["engines"] = ["vllm-cpu"]
    assert measured(dry_run_with(finished_run, config)) == set()


def test_a_new_model_plans_its_data_and_cells_only(finished_run, repo):
    config = load_test_config(repo)
    config["model_shapes"] = {
        "micro2": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 2,
                   "ffn_size": 64, "vocab_size": 512, "max_seq_len": 256}
    }  # fmt: skip
    config["finetune"]["grid"].append(
        {"models": ["micro2"], "frameworks": {"torch": ["lora"]}, "batches": [1]}
    )
    planned = dry_run_with(finished_run, config)
    assert measured(planned) == {
        "results/data/micro2/model",
        "results/data/micro2/train.jsonl",
        "results/data/micro2/prompts.jsonl",
        "results/records/finetune/cpu/micro2/torch/lora/w1/b1.json",
    }


def test_more_measured_steps_re_measure_pretraining_cells_only(finished_run, repo):
    config = load_test_config(repo)
    config["pretrain"]["measured_steps"] = 12
    planned = dry_run_with(finished_run, config)
    pretraining = {p for p in measured(planned) if p.startswith(PRETRAIN)}
    assert pretraining == measured(planned)
    assert len(pretraining) == 13  # every pre-training cell of tests/config/test.yaml


def test_more_ladder_steps_re_measure_its_rungs_only(finished_run, repo):
    config = load_test_config(repo)
    config["ladder"]["measured_steps"] = 4
    planned = dry_run_with(finished_run, config)
    assert measured(planned) == {
        f"results/records/ladder/cpu/micro/torch/{rung}/w1/bmax.json"
        for rung in ("baseline", "sdpa+fused+compile")
    }


def test_key_order_comments_and_descriptions_re_measure_nothing(finished_run, repo):
    config = reversed_keys(load_test_config(repo))
    config["platforms"]["cpu"]["description"] = "the same machine, described anew"
    edited = finished_run / "edited.yaml"
    edited.write_text("# a comment\n" + yaml.safe_dump(config, sort_keys=False))
    done = snakemake(finished_run, "-n", "--configfile", str(edited))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Nothing to be done" in done.stdout + done.stderr


def test_time_limits_and_retries_re_measure_nothing(finished_run, repo):
    config = load_test_config(repo)
    config["pretrain"]["probe_timeout_s"] = 100
    config["pretrain"]["probe_retries"] = 3
    config["serve"]["workloads"]["burst"]["request_timeout_s"] = 60
    planned = dry_run_with(finished_run, config)
    assert not measured(planned)


def test_the_canonical_form_is_the_same_in_any_key_order():
    one = {"b": 1, "a": {"d": [1, {"y": 2, "x": 1}], "c": None}}
    other = {"a": {"c": None, "d": [1, {"x": 1, "y": 2}]}, "b": 1}
    assert repr(canonical(one)) == repr(canonical(other))


def test_another_search_method_re_measures_nothing(finished_run, repo):
    # how the largest batch is searched is policy, like the probes' time limit
    config = load_test_config(repo)
    config["pretrain"]["max_batch_search"]["method"] = "bisect"
    assert measured(dry_run_with(finished_run, config)) == set()
