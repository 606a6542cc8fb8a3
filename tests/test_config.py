import copy

import pytest
import yaml

from llmdissect.config import ConfigError, check_config, load_schema


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


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_pass(repo, schema, name):
    check_config(yaml.safe_load((repo / "config" / name).read_text()), schema)


def test_defaults_are_filled_in(good, schema):
    del good["pretrain"]["max_batch_search"]
    config = check_config(good, schema)
    assert config["pretrain"]["max_batch_search"] == {
        "start": 1,
        "limit": 256,
        "fit_check_steps": 2,
    }
    assert config["aggregate"]["import_dirs"] == []


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c.update(colour="red"), "unknown config key colour"),
        (lambda c: c["pretrain"].update(bogus=1), "unknown config key pretrain.bogus"),
        (lambda c: c["pretrain"].update(batches=[0]), "config key pretrain.batches[0]: 0 is not"),
        (lambda c: c["pretrain"].update(batches=["huge"]), "pretrain.batches[0]"),
        (lambda c: c["data"].update(seq_len=-5), "config key data.seq_len: -5 is less than"),
        (lambda c: c["data"].update(prompt_len="long"), "data.prompt_len: 'long' is not of type"),
        (lambda c: c["pretrain"].update(models=["llama9"]), "unknown model 'llama9'"),
        (
            lambda c: c["pretrain"]["frameworks"].update(torch=["zero9"]),
            "pretrain.frameworks.torch[0]: 'zero9' is not one of",
        ),
        (
            lambda c: c["pretrain"]["frameworks"].update(nemo=["baseline"]),
            "unknown config key pretrain.frameworks.nemo",
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
    ],
)
def test_bad_configs_are_refused_naming_the_key(good, schema, change, expected):
    config = copy.deepcopy(good)
    change(config)
    assert expected in refused(config, schema)


def test_every_problem_is_reported_at_once(good, schema):
    good["pretrain"]["batches"] = [0]
    good["data"]["seq_len"] = -1
    message = refused(good, schema)
    assert "pretrain.batches[0]" in message and "data.seq_len" in message
