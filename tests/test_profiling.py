"""The phase split on a hand-made trace, and on a real torch.profiler trace of a CPU step."""

import gzip
import json

import pytest

from llmdissect.profiling.phases import load_trace, merged, phase_split


def event(cat, name, ts, dur):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur}


def test_busy_time_counts_overlapping_activity_once():
    assert merged([(0, 10), (5, 15), (20, 30)]) == [(0, 15), (20, 30)]


def test_phase_split_on_a_hand_made_gpu_trace():
    # one step of 100 us: forward 0-40 with kernels 0-10 and 5-30 (busy 30), backward 40-100
    # with one kernel 50-80 (busy 30); CPU-side operators are ignored on a GPU
    events = [
        event("user_annotation", "ProfilerStep#1", 0, 100),
        event("gpu_user_annotation", "phase.forward", 0, 40),
        event("gpu_user_annotation", "phase.backward", 40, 60),
        event("kernel", "gemm", 0, 10),
        event("kernel", "gemm", 5, 25),
        event("kernel", "gemm", 50, 30),
        event("cpu_op", "aten::mm", 0, 100),
    ]
    split = phase_split(events)
    assert split["activity"] == "gpu kernels" and split["steps"] == 1
    assert split["forward_wall_ms"] == pytest.approx(0.040)
    assert split["forward_busy_ms"] == pytest.approx(0.030)
    assert split["forward_idle_share"] == pytest.approx(0.25)
    assert split["backward_idle_share"] == pytest.approx(0.5)
    assert split["step_busy_ms"] == pytest.approx(0.060)
    assert "optimizer_wall_ms" not in split  # no range, no number


def test_phase_split_of_a_real_cpu_step(tmp_path):
    import torch
    from torch.profiler import ProfilerActivity, profile

    from llmdissect.training.frameworks.base import phase

    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 8))
    optimizer = torch.optim.AdamW(model.parameters())
    batch = torch.randn(32, 64)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(2):
            with torch.profiler.record_function("ProfilerStep#0"):
                with phase("forward"):
                    loss = model(batch).square().mean()
                with phase("backward"):
                    loss.backward()
                with phase("optimizer"):
                    optimizer.step()
                    optimizer.zero_grad()
    raw = tmp_path / "trace.json"
    profiler.export_chrome_trace(str(raw))
    packed = tmp_path / "trace.json.gz"
    packed.write_bytes(gzip.compress(raw.read_bytes()))
    split = phase_split(load_trace(packed))
    assert split["activity"] == "cpu operators" and split["steps"] == 2
    for name in ("step", "forward", "backward", "optimizer"):
        assert 0 < split[f"{name}_busy_ms"] <= split[f"{name}_wall_ms"]
        assert 0 <= split[f"{name}_idle_share"] < 1
    parts = sum(split[f"{n}_wall_ms"] for n in ("forward", "backward", "optimizer"))
    assert parts <= split["step_wall_ms"]
    assert json.loads(raw.read_text())["traceEvents"]
