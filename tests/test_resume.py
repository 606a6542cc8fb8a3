"""Cells measured in an earlier session are read, not measured again."""

import json
from pathlib import Path

from llmdissect.resume import reusable_records
from llmdissect.training.cell import batch_one_failed


def write(folder, key, status, reason=None):
    """The fields of a record that reuse reads (a full record has more)."""
    path = folder / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "status": status, "reason": reason}))
    return path


def test_results_are_reused_and_errors_are_measured_again(tmp_path):
    earlier, later = tmp_path / "earlier", tmp_path / "later"
    write(earlier, "pretrain/h200/7b/torch/baseline/w1/b1", "ok")
    write(earlier, "pretrain/h200/7b/deepspeed/baseline/w1/b1", "oom", "CUDA out of memory")
    write(earlier, "pretrain/h200/7b/deepspeed/zero3/w1/b1", "error", "it crashed")
    write(later, "pretrain/h200/7b/torch/baseline/w1/b1", "ok")
    (earlier / "pretrain/h200/7b/megatron/baseline/w1").mkdir(parents=True)
    (earlier / "pretrain/h200/7b/megatron/baseline/w1/b1.json").write_text("{half a rec")
    keys = [
        "pretrain/h200/7b/torch/baseline/w1/b1",
        "pretrain/h200/7b/deepspeed/baseline/w1/b1",
        "pretrain/h200/7b/deepspeed/zero3/w1/b1",
        "pretrain/h200/7b/megatron/baseline/w1/b1",
        "pretrain/h200/7b/torch/baseline/w1/bmax",
    ]
    found = reusable_records([str(earlier), str(later)], keys)
    assert set(found) == set(keys[:2])  # not the error, the unreadable or the missing one
    assert found[keys[0]].startswith(str(later))  # the last folder wins, as in the tables


def test_a_largest_batch_whose_batch_one_ran_out_of_memory_is_out_of_memory(tmp_path):
    oom = write(tmp_path, "b1", "oom", "CUDA out of memory. Tried to allocate 25.10 GiB")
    outcome = batch_one_failed(oom)
    assert outcome["status"] == "oom"
    assert "batch 1 ran out of memory" in outcome["reason"] and "25.10 GiB" in outcome["reason"]
    assert batch_one_failed(write(tmp_path, "ok", "ok")) is None


def test_a_largest_batch_cell_finds_its_batch_one_twin_here_or_in_a_reused_folder(
    tmp_path, monkeypatch
):
    from llmdissect.cells import TrainingCell
    from llmdissect.resume import batch_one_record

    monkeypatch.chdir(tmp_path)
    cell = TrainingCell("pretrain", "h200", "llama2-7b", "deepspeed", "baseline", 1, "max")
    twin_key = "pretrain/h200/llama2-7b/deepspeed/baseline/w1/b1"
    config = {"aggregate": {"import_dirs": [str(tmp_path / "ref")], "reuse_imported": True}}
    assert batch_one_record(config, cell) is None
    write(tmp_path / "results/records", twin_key, "ok")
    assert batch_one_record(config, cell) == Path("results/records") / f"{twin_key}.json"
    reused = write(tmp_path / "ref", twin_key, "oom", "CUDA out of memory")
    assert batch_one_record(config, cell) == reused
    config["aggregate"]["reuse_imported"] = False
    assert batch_one_record(config, cell).parts[0] == "results"
    assert batch_one_record(config, TrainingCell(*list(cell.as_dict().values())[:6], "1")) is None
