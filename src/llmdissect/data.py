"""Synthetic workloads: a locally built tokenizer, training samples and serving prompts.

Same seed, same bytes: every file here is a pure function of its arguments.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .models import ModelShape, hf_config

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]  # ids 0, 1, 2, as in Llama-2
FIRST_WORD_ID = len(SPECIAL_TOKENS)


def word(token_id: int) -> str:
    return f"w{token_id}"


def build_tokenizer(vocab_size: int):
    """A word-level tokenizer whose every id is one whitespace-separated word, so text and ids
    round-trip exactly and a prompt of N words is N tokens in every engine."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    vocab.update({word(i): i for i in range(FIRST_WORD_ID, vocab_size)})
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<unk>",
        model_max_length=1_000_000,
    )


def write_model_card(shape: ModelShape, out_dir: Path) -> None:
    """The HF config and tokenizer of a model: every framework and engine loads the same shape."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf_config(shape).save_pretrained(out_dir)
    build_tokenizer(shape.vocab_size).save_pretrained(out_dir)


def write_random_weights(shape: ModelShape, out_dir: Path, seed: int = 0) -> None:
    """A loadable checkpoint of random weights, for engines that cannot make up their own."""
    import torch

    from .models import build_hf_model

    write_model_card(shape, out_dir)
    torch.manual_seed(seed)
    # drawing billions of random weights takes minutes on CPUs, seconds on a GPU
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = build_hf_model(shape, dtype="bfloat16")  # engines cast on load
    model.save_pretrained(out_dir)


def sample_lengths(rng: np.random.Generator, count: int, mean_len: int, spread: int) -> np.ndarray:
    """Lengths uniform in [mean - spread, mean + spread]: the mean is exact in expectation."""
    if spread == 0:
        return np.full(count, mean_len, dtype=np.int64)
    return rng.integers(mean_len - spread, mean_len + spread + 1, size=count)


def random_token_ids(rng: np.random.Generator, length: int, vocab_size: int) -> list[int]:
    return rng.integers(FIRST_WORD_ID, vocab_size, size=int(length)).tolist()


def training_samples(
    seed: int, count: int, mean_len: int, spread: int, vocab_size: int
) -> list[list[int]]:
    rng = np.random.default_rng([seed, 0])
    lengths = sample_lengths(rng, count, mean_len, spread)
    return [random_token_ids(rng, n, vocab_size) for n in lengths]


def serving_prompts(seed: int, count: int, prompt_len: int, vocab_size: int) -> list[list[int]]:
    rng = np.random.default_rng([seed, 1])
    return [random_token_ids(rng, prompt_len, vocab_size) for _ in range(count)]


def write_training_samples(path: Path, samples: list[list[int]]) -> None:
    _write_jsonl(path, ({"input_ids": ids} for ids in samples))


def write_serving_prompts(path: Path, prompts: list[list[int]]) -> None:
    _write_jsonl(
        path,
        ({"prompt": " ".join(map(word, ids)), "prompt_token_ids": ids} for ids in prompts),
    )


def read_training_samples(path: Path) -> list[list[int]]:
    with open(path) as f:
        return [json.loads(line)["input_ids"] for line in f if line.strip()]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_jsonl(path: Path, rows) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
