"""The plan: which cells a config measures and how long they should take, before any run."""

import json
import subprocess
import sys

from llmdissect.plan import load_config, plan, report


def record(folder, key, stage, model, framework, method, batch, seconds, status="ok"):
    path = folder / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    cell = dict(stage=stage, platform="cpu", model=model, framework=framework, method=method,
                world_size=1, batch=batch)  # fmt: skip
    path.write_text(json.dumps({"key": key, "cell": cell, "status": status, "duration_s": seconds}))


def test_the_default_config_prints_its_plan(tmp_path, repo):
    done = subprocess.run(
        [sys.executable, "-m", "llmdissect.plan"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:5] == ["stage", "cells", "reused", "done", "to"]
    assert any(line.startswith("pretrain") for line in lines)
    assert any(line.startswith("total") for line in lines)
    assert "pretrain/cpu/tiny/torch/baseline/w1/bmax" in done.stdout
    assert "no record on this platform to go by" in done.stdout  # nothing measured there yet


def test_predictions_come_from_records_of_the_platform(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    past = tmp_path / "past"
    key = "pretrain/cpu/tiny/torch/baseline/w1"
    record(past, f"{key}/b1", "pretrain", "tiny", "torch", "baseline", "1", 12.0)
    record(past, f"{key}/bmax", "pretrain", "tiny", "torch", "baseline", "max", 50.0)
    oom = "pretrain/cpu/tiny/deepspeed/zero3+offload+recompute+flash/w1"
    record(past, f"{oom}/b1", "pretrain", "tiny", "deepspeed", "x", "1", 3.0, status="oom")
    # recorded without a probe: it says nothing of how long a search takes
    record(past, f"{oom}/bmax", "pretrain", "tiny", "deepspeed", "x", "max", 0.0, status="oom")
    config, problems = load_config([])
    planned = {p.key: p for p in plan(config, [str(past)])}
    assert planned[f"{key}/b1"].seconds == 12.0
    assert planned[f"{key}/b1"].basis == "this cell's earlier record"
    assert planned[f"{oom}/bmax"].seconds == 0.0  # batch 1 did not fit: no probe
    megatron = planned["pretrain/cpu/tiny/megatron/baseline/w1/bmax"]
    assert megatron.seconds == 50.0 and "same stage and model" in megatron.basis
    text = report(list(planned.values()), problems)
    assert "pretrain/cpu/tiny/megatron/baseline/w1/bmax" in text


def test_reused_cells_are_not_planned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    imported = tmp_path / "imported"
    key = "pretrain/cpu/tiny/torch/baseline/w1/b1"
    record(imported, key, "pretrain", "tiny", "torch", "baseline", "1", 12.0)
    config, _ = load_config([])
    config["aggregate"] = {"import_dirs": [str(imported)], "reuse_imported": True}
    planned = {p.key: p for p in plan(config, [])}
    assert planned[key].status == "reused"
    assert planned["pretrain/cpu/tiny/torch/baseline/w1/bmax"].status == "measure"
