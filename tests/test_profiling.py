"""The phase split on a hand-made trace, and on a real torch.profiler trace of a CPU step."""

import gzip
import json

import pytest

from llmdissect.profiling.phases import load_trace, merged, phase_split


def event(cat, name, ts, dur, tid=1, **args):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "tid": tid, "args": args}


def launch(ts, correlation, tid=1):
    return event("cuda_runtime", "cudaLaunchKernel", ts, 2, tid=tid, correlation=correlation)


def test_busy_time_counts_overlapping_activity_once():
    assert merged([(0, 10), (5, 15), (20, 30)]) == [(0, 15), (20, 30)]


def test_phase_split_on_a_hand_made_gpu_trace():
    # one step of 200 us. CPU: forward 0-40, backward 40-100 (its launches on autograd's thread
    # 2), optimizer 100-120. The forward's kernels run 10-30 and 25-70 (busy 60), so the device
    # is still busy with the forward when the CPU starts the backward; the backward's kernel
    # runs 80-110; the optimizer's 150-160, after a wait. The GPU-side ranges are ignored.
    events = [
        event("user_annotation", "ProfilerStep#1", 0, 200),
        event("user_annotation", "phase.forward", 0, 40),
        event("user_annotation", "module.linear", 1, 30),  # nested: its launch still counts
        event("user_annotation", "phase.backward", 40, 60),
        event("user_annotation", "phase.optimizer", 100, 20),
        event("gpu_user_annotation", "phase.forward", 10, 1),
        launch(5, 1),
        launch(8, 2),
        launch(45, 3, tid=2),
        launch(110, 4),
        event("kernel", "gemm", 10, 20, correlation=1),
        event("kernel", "gemm", 25, 45, correlation=2),
        event("kernel", "gemm", 80, 30, correlation=3),
        event("kernel", "adam", 150, 10, correlation=4),
        event("cpu_op", "aten::mm", 0, 100),
    ]
    split = phase_split(events)
    assert split["activity"] == "gpu kernels" and split["steps"] == 1
    # forward: opens at 0, closes when its last kernel ends (70): busy 60 of 70
    assert split["forward_wall_ms"] == pytest.approx(0.070)
    assert split["forward_busy_ms"] == pytest.approx(0.060)
    # backward: opens when the forward's window closes (70), closes at 110: busy 30 of 40
    assert split["backward_wall_ms"] == pytest.approx(0.040)
    assert split["backward_idle_share"] == pytest.approx(0.25)
    # optimizer: 110-160, busy 10
    assert split["optimizer_wall_ms"] == pytest.approx(0.050)
    assert split["optimizer_idle_share"] == pytest.approx(0.8)
    assert split["step_wall_ms"] == pytest.approx(0.200)
    assert split["step_busy_ms"] == pytest.approx(0.100)


def test_phases_without_a_range_have_no_numbers():
    events = [
        event("user_annotation", "ProfilerStep#1", 0, 100),
        event("user_annotation", "phase.forward", 0, 40),
        launch(5, 1),
        event("kernel", "gemm", 10, 20, correlation=1),
    ]
    split = phase_split(events)
    assert split["forward_busy_ms"] == pytest.approx(0.020)
    assert "backward_wall_ms" not in split and "optimizer_wall_ms" not in split


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
