import numpy as np

from llmdissect.data import (
    build_tokenizer,
    file_sha256,
    serving_prompts,
    training_samples,
    write_model_card,
    write_serving_prompts,
    write_training_samples,
)
from llmdissect.models import LLAMA2_SHAPES


def test_same_seed_same_bytes(tmp_path):
    for run in ("a", "b"):
        write_training_samples(tmp_path / f"{run}.jsonl", training_samples(3, 32, 350, 50, 32000))
        write_serving_prompts(tmp_path / f"{run}.p.jsonl", serving_prompts(3, 8, 512, 32000))
    assert file_sha256(tmp_path / "a.jsonl") == file_sha256(tmp_path / "b.jsonl")
    assert file_sha256(tmp_path / "a.p.jsonl") == file_sha256(tmp_path / "b.p.jsonl")


def test_another_seed_other_bytes():
    assert training_samples(1, 4, 64, 0, 1000) != training_samples(2, 4, 64, 0, 1000)


def test_sample_lengths_have_the_configured_mean_and_range():
    samples = training_samples(0, 2000, 350, 100, 32000)
    lengths = np.array([len(s) for s in samples])
    assert lengths.min() >= 250 and lengths.max() <= 450
    assert abs(lengths.mean() - 350) < 3
    assert {len(s) for s in training_samples(0, 50, 350, 0, 32000)} == {350}


def test_token_ids_stay_inside_the_vocabulary_and_skip_special_tokens():
    ids = np.concatenate(training_samples(0, 50, 64, 0, 100))
    assert ids.min() >= 3 and ids.max() < 100


def test_prompts_tokenize_to_exactly_their_ids():
    tokenizer = build_tokenizer(1024)
    prompts = serving_prompts(0, 3, 512, 1024)
    for ids in prompts:
        text = " ".join(f"w{i}" for i in ids)
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == ids
        assert len(ids) == 512


def test_model_card_loads_back_with_transformers(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    write_model_card(LLAMA2_SHAPES["micro"], tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert config.vocab_size == 1024 == len(tokenizer)
    assert tokenizer.eos_token_id == 2
