import json
import time

import pytest

from llmdissect.environment import collect_manifest
from llmdissect.records import make_record, now_iso, read_record, record_errors, write_json_atomic


def record(status="ok", reason=None):
    return make_record(
        key="pretrain/cpu/micro/torch/baseline/b1",
        cell={"stage": "pretrain", "platform": "cpu", "model": "micro"},
        status=status,
        reason=reason,
        metrics={"tokens_per_s": 1.0},
        settings={},
        environment=collect_manifest(),
        started_at=now_iso(),
        started_monotonic=time.monotonic(),
    )


def test_a_fresh_record_is_valid_and_round_trips(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, record())
    assert read_record(path)["metrics"] == {"tokens_per_s": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def test_an_oom_record_needs_and_keeps_its_reason():
    assert record_errors(record("oom", "CUDA out of memory")) == []
    broken = record("oom", "x")
    broken["reason"] = None
    assert any("reason" in e for e in record_errors(broken))


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status must be one of"):
        record("crashed")
    broken = record()
    broken["status"] = "crashed"
    assert any("status" in e for e in record_errors(broken))


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(
            path, {"a": object.__new__(type("Unserialisable", (), {"__str__": None}))}
        )
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_manifest_names_the_machine_and_libraries():
    manifest = collect_manifest()
    assert manifest["host"]["cpu_logical_cores"] >= 1
    assert manifest["host"]["host_memory_gb"] > 0
    assert "torch" in manifest["libraries"] and "transformers" in manifest["libraries"]
    assert manifest["accelerators"]["gpus"] == []  # these test machines have no GPU
