import copy
import sys

import pytest
import yaml

from llmdissect.config import ConfigError, check_config, drop_disabled_stages, load_schema


@pytest.fixture(scope="module")
def schema(repo):
    return load_schema(repo / "workflow/schemas/config.schema.yaml")


@pytest.fixture
def good(repo):
    return yaml.safe_load((repo / "config/config.yaml").read_text())


def refused(config, schema) -> str:
    with pytest.raises(ConfigError) as caught:
        check_config(config, schema)
    return str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        "config.yaml",
        "paper.yaml",
        "h100.yaml",
        "multigpu.yaml",
        "h200.yaml",
        "h200-ladder.yaml",
        "h200-table4.yaml",
    ],
)
def test_shipped_configs_pass(repo, schema, name):
    config = yaml.safe_load((repo / "config" / name).read_text())
    drop_disabled_stages(config)
    check_config(config, schema)


def test_the_two_engine_serving_config_needs_only_its_engine_venv(repo, schema, monkeypatch):
    config = yaml.safe_load((repo / "config" / "h200-serving.yaml").read_text())
    drop_disabled_stages(config)
    monkeypatch.chdir(repo)
    if not (repo / ".venv-lmdeploy/bin/python").exists():
        with pytest.raises(ConfigError, match="config key engines.lmdeploy.python"):
            check_config(copy.deepcopy(config), schema)
    config["engines"]["lmdeploy"]["python"] = sys.executable
    check_config(config, schema)


def test_a_null_stage_is_left_out(good, schema):
    good["finetune"] = None
    drop_disabled_stages(good)
    assert "finetune" not in good
    check_config(good, schema)


def test_several_platforms_need_a_partition_each(good, schema):
    good["platforms"]["a800"] = {"device": "cuda", "slurm_partition": "a800"}
    good["platform"] = ["cpu", "a800"]
    assert "each needs platforms.<name>.slurm_partition (missing for cpu)" in refused(good, schema)
    good["platforms"]["cpu"]["slurm_partition"] = "main"
    check_config(good, schema)


def test_defaults_are_filled_in(good, schema):
    del good["pretrain"]["max_batch_search"]
    config = check_config(good, schema)
    assert config["pretrain"]["max_batch_search"] == {
        "start": 1,
        "limit": 256,
        "fit_check_steps": 2,
        "method": "predicted",
    }
    assert config["aggregate"]["import_dirs"] == []


def first_block(config):
    return config["pretrain"]["grid"][0]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c.update(colour="red"), "unknown config key colour"),
        (lambda c: c["pretrain"].update(bogus=1), "unknown config key pretrain.bogus"),
        (
            lambda c: first_block(c).update(batches=[0]),
            "config key pretrain.grid[0].batches[0]: 0 is not a batch size of at least 1",
        ),
        (lambda c: first_block(c).update(batches=["huge"]), "pretrain.grid[0].batches[0]"),
        (lambda c: c["data"].update(seq_len=-5), "config key data.seq_len: -5 is less than"),
        (lambda c: c["data"].update(prompt_len="long"), "data.prompt_len: 'long' is not of type"),
        (lambda c: c["pretrain"].update(models=["llama9"]), "unknown model 'llama9'"),
        (
            lambda c: first_block(c)["frameworks"].update(torch=["zero9"]),
            "pretrain.grid[0].frameworks.torch[0]: method 'zero9': unknown feature zero9",
        ),
        (
            lambda c: first_block(c)["frameworks"].update(torch=["zero2"]),
            "framework 'torch' does not offer zero2",
        ),
        (
            lambda c: first_block(c)["frameworks"].update(deepspeed=["offload"]),
            "offload needs zero2 or zero3",
        ),
        (
            lambda c: first_block(c)["frameworks"].update(deepspeed=["zero2+zero3"]),
            "zero2 and zero3 exclude each other",
        ),
        (
            lambda c: first_block(c)["frameworks"].update(deepspeed=["Zero2 offload"]),
            "frameworks.deepspeed[0]: 'Zero2 offload' does not match",
        ),
        (
            lambda c: first_block(c)["frameworks"].update(nemo=["baseline"]),
            "pretrain.grid[0].frameworks.nemo[0]: unknown framework 'nemo' (known: deepspeed, "
            "megatron, torch)",
        ),
        (
            lambda c: first_block(c).update(world_sizes=[1, 2]),
            "pretrain.grid[0].world_sizes: framework 'torch' runs one process",
        ),
        (lambda c: first_block(c).update(world_sizes=[0]), "grid[0].world_sizes[0]: 0 is less"),
        (
            lambda c: first_block(c).update(models=["llama9"]),
            "config key pretrain.grid[0].models[0]: unknown model 'llama9'",
        ),
        (
            lambda c: c.update(platform="tpu"),
            "config key platform: 'tpu' is not a key of platforms",
        ),
        (lambda c: c["platforms"]["cpu"].update(device="npu"), "platforms.cpu.device"),
        (lambda c: c["pretrain"].update(measured_steps=3), "pretrain.measured_steps: 3 is less"),
        (lambda c: c["data"].update(seq_len=5000), "exceed model 'tiny''s max_seq_len 1024"),
        (
            lambda c: c["pretrain"]["max_batch_search"].update(start=64, limit=8),
            "pretrain.max_batch_search.start: larger than limit",
        ),
        (
            lambda c: c["pretrain"].update(megatron={"pipeline_parallel": 2}),
            "pretrain.megatron.pipeline_parallel: 2 is greater than the maximum of 1",
        ),
        (
            lambda c: c.update(
                finetune={
                    "models": ["tiny"],
                    "grid": [{"frameworks": {"torch": ["recompute"]}, "batches": [1]}],
                }  # fmt: skip
            ),
            "config key finetune.grid[0].frameworks.torch[0]: method 'recompute': a fine-tuning",
        ),
        (
            lambda c: c.update(aggregate={"import_dirs": ["reference/nowhere"]}),
            "aggregate.import_dirs[0]: no folder 'reference/nowhere'",
        ),
        (
            lambda c: c["serve"].update(engines=["tgi"]),
            "config key serve.engines[0]: no engine 'tgi' under engines (transformers, vllm-cpu)",
        ),
        (
            lambda c: c["engines"].update(mine={"kind": "command"}),
            "config key engines.mine.command: required for kind command",
        ),
        (
            lambda c: c["engines"].update(mine={"kind": "ollama"}),
            "config key engines.mine.kind",
        ),
        (
            lambda c: c["serve"]["workloads"].update(steady={"arrivals": "poisson"}),
            "config key serve.workloads.steady.rate: required for poisson arrivals",
        ),
        (
            lambda c: c["serve"]["workloads"]["offline"].update(
                engines=["vllm-cpu", "transformers"]
            ),
            "config key serve.workloads.offline.arrivals: engine 'transformers' (kind "
            "transformers-serve) has no offline mode here (kinds with one: vllm)",
        ),
        (
            lambda c: c["serve"]["workloads"]["offline"].update(engines=["vllm"]),
            "config key serve.workloads.offline.engines[0]: no engine 'vllm' under engines "
            "(transformers, vllm-cpu)",
        ),
        (
            lambda c: c["serve"]["workloads"]["burst"].update(max_new_tokens=900),
            "tokens (1412) exceed model 'tiny''s max_seq_len 1024",
        ),
        (
            lambda c: c["engines"]["vllm-cpu"].update(memory_fraction=1.5),
            "engines.vllm-cpu.memory_fraction: 1.5 is greater than the maximum of 1",
        ),
        (
            lambda c: c["ladder"].update(rungs=["baseline", "flash+sdpa"]),
            "config key ladder.rungs[1]: method 'flash+sdpa': flash and sdpa are two attention",
        ),
        (
            lambda c: c["ladder"].update(framework="deepspeed", rungs=["baseline", "fused"]),
            "config key ladder.rungs[1]: method 'fused': framework 'deepspeed' does not offer",
        ),
        (
            lambda c: c["ladder"].update(framework="jax"),
            "config key ladder.framework: unknown framework 'jax'",
        ),
        (
            lambda c: c["ladder"].update(models=["llama2-8b"]),
            "config key ladder.models[0]",
        ),
        (lambda c: c["ladder"].update(rungs=["baseline"]), "config key ladder.rungs"),
    ],
)
def test_bad_configs_are_refused_naming_the_key(good, schema, change, expected):
    config = copy.deepcopy(good)
    change(config)
    assert expected in refused(config, schema)


def test_every_problem_is_reported_at_once(good, schema):
    first_block(good)["batches"] = [0]
    good["data"]["seq_len"] = -1
    message = refused(good, schema)
    assert "pretrain.grid[0].batches[0]" in message and "data.seq_len" in message
