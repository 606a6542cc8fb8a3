"""Decode bandwidth use (MBU) and cost per million tokens, derived by the report from records
and the platforms' report-only numbers."""

import time

import pytest

from llmdissect.environment import collect_manifest
from llmdissect.hardware import memory_bandwidth_gbs
from llmdissect.models import LLAMA2_SHAPES, param_count
from llmdissect.records import make_record, now_iso
from llmdissect.report.serving import serving_table
from llmdissect.report.tidy import cells_frame
from llmdissect.report.training import training_table
from llmdissect.rule_params import platform_measured, platform_rates
from llmdissect.serving.bandwidth import decode_bandwidth, kv_bytes_per_token

SHAPE = LLAMA2_SHAPES["llama2-7b"]


def serve_record(metrics, gpu="NVIDIA H200", status="ok", world_size=1):
    environment = collect_manifest()
    environment["accelerators"] = {"gpus": [{"name": gpu, "memory_gb": 143.0}] * world_size}
    return make_record(
        key=f"serve/gpu/llama2-7b/vllm/burst/w{world_size}",
        cell=dict(
            stage="serve",
            platform="gpu",
            model="llama2-7b",
            framework="vllm",
            method="burst",
            world_size=world_size,
        ),  # fmt: skip
        status=status,
        reason=None,
        metrics=metrics,
        settings={
            "engine": {"dtype": "bfloat16"},
            "model_shape": SHAPE.as_dict(),
            "prompt_len": 512,
            "workload": {"max_new_tokens": 128},
        },
        environment=environment,
        started_at=now_iso(),
        started_monotonic=time.monotonic(),
    )


def test_decode_bytes_are_the_weights_per_step_and_each_tokens_cache():
    metrics = {"tpot_median_ms": 40.0, "output_tokens_per_s": 4000.0}
    derived = decode_bandwidth(serve_record(metrics), bandwidth_gbs=4800.0)
    weights = (param_count(SHAPE) - 32000 * 4096) * 2 / 0.040
    cache = kv_bytes_per_token(SHAPE, 2) * (512 + 64) * 4000.0
    assert kv_bytes_per_token(SHAPE, 2) == 2 * 32 * 4096 * 2  # 512 KiB per token at 7B
    assert derived["decode_gb_per_s"] == pytest.approx((weights + cache) / 1e9, rel=1e-3)
    assert derived["mbu"] == pytest.approx((weights + cache) / 1e9 / 4800.0, rel=1e-3)
    two_gpus = decode_bandwidth(serve_record(metrics, world_size=2), bandwidth_gbs=4800.0)
    assert two_gpus["mbu"] == pytest.approx(derived["mbu"] / 2, rel=1e-3)


def test_no_mbu_without_a_bandwidth_or_a_measured_load():
    metrics = {"tpot_median_ms": 40.0, "output_tokens_per_s": 4000.0}
    assert decode_bandwidth(serve_record(metrics), None)["mbu"] is None
    assert decode_bandwidth(serve_record({}, status="oom"), 4800.0) == {}


@pytest.mark.parametrize(
    "name, expected",
    [("NVIDIA H200", 4800.0), ("NVIDIA H100 80GB HBM3", 3350.0), ("NVIDIA H100 PCIe", 2000.0),
     ("NVIDIA A100-SXM4-80GB", 2039.0), ("Intel Xeon", None), (None, None)],
)  # fmt: skip
def test_known_gpus_have_their_datasheet_bandwidth(name, expected):
    assert memory_bandwidth_gbs(name) == expected


def test_the_serving_table_shows_mbu_from_the_gpu_or_the_platform_bandwidth():
    record = serve_record({"tpot_median_ms": 40.0, "output_tokens_per_s": 4000.0})
    from_datasheet = serving_table(cells_frame([record]))["MBU"].iloc[0]
    overridden = serving_table(cells_frame([record], {"gpu": {"memory_bandwidth_gbs": 2400.0}}))
    assert from_datasheet.endswith("%")
    assert float(overridden["MBU"].iloc[0][:-1]) == pytest.approx(
        2 * float(from_datasheet[:-1]), abs=0.1
    )
    cpu = serve_record({"tpot_median_ms": 40.0, "output_tokens_per_s": 4000.0}, gpu="")
    cpu["environment"]["accelerators"] = {}
    assert "MBU" not in serving_table(cells_frame([cpu])).columns


def test_cost_per_million_tokens_follows_the_platform_price():
    record = serve_record({"tpot_median_ms": 40.0, "output_tokens_per_s": 4000.0}, world_size=2)
    cells = cells_frame([record], {"gpu": {"price_per_gpu_hour": 3.6}})
    # two GPUs at 3.6 USD an hour for 4000 tokens a second: 7.2 / 3600 / 4000 x 1e6
    assert cells["usd_per_m_tokens"].iloc[0] == pytest.approx(0.5)
    assert serving_table(cells)["USD/M output tokens"].iloc[0] == "0.5"
    training = dict(record, key="pretrain/gpu/x", cell=dict(record["cell"], stage="pretrain",
                    batch="1"), metrics={"tokens_per_s": 1000.0, "batch_size": 1})  # fmt: skip
    table, note = training_table(
        cells_frame([training], {"gpu": {"price_per_hour": 1.8}}), "pretrain"
    )
    assert table["b=1 USD/M tokens"].iloc[0] == "0.5" and "USD/M tokens" in note
    table, _ = training_table(cells_frame([training]), "pretrain")
    assert not [c for c in table.columns if "USD" in c]


def test_prices_and_bandwidth_are_report_only_platform_keys():
    config = {"platforms": {"gpu": {"device": "cuda", "price_per_gpu_hour": 2.5,
                                    "memory_bandwidth_gbs": 4800}}}  # fmt: skip
    assert platform_measured(config, "gpu") == {"device": "cuda"}
    assert platform_rates(config) == {
        "gpu": {"memory_bandwidth_gbs": 4800, "price_per_gpu_hour": 2.5}
    }
