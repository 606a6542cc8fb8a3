"""Decode bandwidth use (MBU) of a serving record: the bytes decoding must read per second over
what the GPUs' memory can deliver.

Each decode step reads the weights once for every sequence in the batch, and each sequence's
KV cache. A sequence gets one step per TPOT, so the weights are read 1 / TPOT times a second;
every output token reads its sequence's cache, on average prompt + half the output long:

    bytes/s = weight bytes (less the input embedding) / TPOT median
              + KV bytes per token x mean context x output tokens/s
    MBU     = bytes/s / (GPUs x memory bandwidth per GPU)

An estimate from the served traces (TPOT includes the prefills that interleave with decoding),
not a counter reading.
"""

from __future__ import annotations

from ..models import ModelShape, param_count

BYTES_PER_VALUE = {"bfloat16": 2, "float16": 2, "float32": 4}


def kv_bytes_per_token(shape: ModelShape, value_bytes: int) -> int:
    """Keys and values of one token over every layer."""
    return 2 * shape.num_layers * shape.num_kv_heads * shape.head_dim * value_bytes


def decode_bandwidth(record: dict, bandwidth_gbs: float | None) -> dict:
    """decode_gb_per_s and mbu for an ok serving record; {} where an input is missing."""
    settings, metrics = record.get("settings") or {}, record.get("metrics") or {}
    dtype = (settings.get("engine") or {}).get("dtype")
    tpot_ms, output_per_s = metrics.get("tpot_median_ms"), metrics.get("output_tokens_per_s")
    if record.get("status") != "ok" or not settings.get("model_shape") or not tpot_ms:
        return {}
    if dtype not in BYTES_PER_VALUE or not output_per_s:
        return {}
    shape = ModelShape(**settings["model_shape"])
    value_bytes = BYTES_PER_VALUE[dtype]
    workload = settings.get("workload") or {}
    context = settings.get("prompt_len", 0) + workload.get("max_new_tokens", 0) / 2
    # the input embedding is a lookup of a few rows, not a read of the whole matrix
    read_params = param_count(shape) - shape.vocab_size * shape.hidden_size
    weights = read_params * value_bytes / (tpot_ms / 1000)
    cache = kv_bytes_per_token(shape, value_bytes) * context * output_per_s
    gb_per_s = (weights + cache) / 1e9
    gpus = int((record.get("cell") or {}).get("world_size") or 1)
    mbu = gb_per_s / (gpus * bandwidth_gbs) if bandwidth_gbs else None
    return {"decode_gb_per_s": round(gb_per_s, 1), "mbu": round(mbu, 4) if mbu else None}
