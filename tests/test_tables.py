import time

from llmdissect.cells import ServingCell
from llmdissect.environment import collect_manifest
from llmdissect.records import make_record, now_iso
from llmdissect.report.format import to_latex, write_table
from llmdissect.report.ladder import ladder_figure, ladder_table
from llmdissect.report.platforms import hardware_table
from llmdissect.report.tidy import cells_frame, tidy_frame
from llmdissect.report.training import scaling_table, size_ratio_table, training_table

MANIFEST = collect_manifest()


def record(method, batch, status, metrics, world_size=1):
    cell = dict(
        stage="pretrain",
        platform="cpu",
        model="tiny",
        framework="torch",
        method=method,
        world_size=world_size,
        batch=batch,
    )
    return make_record(
        key=f"pretrain/cpu/tiny/torch/{method}/w{world_size}/b{batch}",
        cell=cell,
        status=status,
        reason=None if status == "ok" else "DefaultCPUAllocator: can't allocate memory",
        metrics=metrics,
        settings={},
        environment=MANIFEST,
        started_at=now_iso(),
        started_monotonic=time.monotonic(),
    )


RECORDS = [
    record("baseline", "1", "ok", {"tokens_per_s": 1234.5, "peak_rss_gb": 0.7, "batch_size": 1}),
    record("baseline", "max", "oom", {}),
    record("recompute", "1", "ok", {"tokens_per_s": 1000.0, "peak_rss_gb": 0.6, "batch_size": 1}),
    record("recompute", "max", "ok", {"tokens_per_s": 990.0, "peak_rss_gb": 1.5, "batch_size": 6}),
]


def test_tidy_data_has_one_row_per_cell_and_metric_and_keeps_failed_cells():
    tidy = tidy_frame(RECORDS)
    assert len(tidy) == 3 + 1 + 3 + 3
    oom = tidy[tidy["status"] == "oom"]
    assert len(oom) == 1 and oom["metric"].isna().all()


def test_training_table_shows_oom_not_a_blank():
    table, note = training_table(cells_frame(RECORDS), "pretrain")
    baseline = table[table["method"] == "baseline"].iloc[0]
    assert baseline["max tokens/s"] == "OOM" and baseline["max batch"] == "OOM"
    assert baseline["b=1 tokens/s"] == "1,234"
    recompute = table[table["method"] == "recompute"].iloc[0]
    assert recompute["max batch"] == "6" and recompute["max memory (GB)"] == "1.50"
    assert "host RSS" in note


def test_tables_are_written_in_three_formats(tmp_path):
    table, note = training_table(cells_frame(RECORDS), "pretrain")
    write_table(table, tmp_path / "t2", "Table II", note)
    assert "| cpu | tiny | torch | baseline |" in (tmp_path / "t2.md").read_text()
    assert (tmp_path / "t2.csv").read_text().startswith("platform,model,framework,method")
    assert "\\begin{tabular}" in (tmp_path / "t2.tex").read_text()


def test_latex_escapes_special_characters():
    import pandas as pd

    tex = to_latex(pd.DataFrame({"a_b": ["50%", "x&y"]}), "c_d")
    assert "a\\_b" in tex and "50\\%" in tex and "x\\&y" in tex and "c\\_d" in tex


def test_hardware_table_comes_from_the_manifest():
    table = hardware_table(RECORDS)
    assert list(table["platform"]) == ["cpu"]
    assert table.iloc[0]["CPU"] == MANIFEST["host"]["cpu_model"]
    assert table.iloc[0]["GPU"] == "none"


def test_filters_pick_the_rows_and_columns_of_each_table():
    cells = cells_frame(RECORDS)
    table3, _ = training_table(cells, "pretrain", batches=["1"])
    assert "max tokens/s" not in table3.columns and len(table3) == 2
    table2, _ = training_table(cells, "pretrain", methods=["baseline"])
    assert list(table2["method"]) == ["baseline"]


def test_scaling_efficiency_is_throughput_over_n_times_single():
    records = [
        record("zero2", "1", "ok", {"tokens_per_s": 1000.0, "batch_size": 1}),
        record("zero2", "1", "ok", {"tokens_per_s": 1800.0, "batch_size": 1}, world_size=2),
        record("zero2", "1", "ok", {"tokens_per_s": 3000.0, "batch_size": 1}, world_size=4),
        record("zero3", "1", "ok", {"tokens_per_s": 900.0, "batch_size": 1}, world_size=2),
    ]
    table = scaling_table(cells_frame(records), "pretrain")
    assert list(table["GPUs"]) == [1, 2, 4]  # zero3 has no 1-process twin: left out
    assert list(table["scaling efficiency"]) == [1.0, 0.9, 0.75]


def test_a_search_stopped_by_its_limit_says_the_batch_is_a_lower_bound():
    capped = record("recompute", "max", "ok", {"tokens_per_s": 990.0, "batch_size": 128})
    capped["settings"] = {"batch_search": {"hit_limit": True, "limit": 128, "probes": []}}
    table, _ = training_table(cells_frame([capped]), "pretrain")
    assert table.iloc[0]["max batch"] == ">=128"


def test_mfu_is_shown_where_the_device_has_a_peak_and_dropped_where_none_has():
    gpu = record("baseline", "1", "ok", {"tokens_per_s": 5.0e3, "batch_size": 1, "mfu": 0.2786})
    table, note = training_table(cells_frame([gpu]), "pretrain")
    assert table.iloc[0]["b=1 MFU"] == "27.9%" and "MFU:" in note
    table, note = training_table(cells_frame(RECORDS), "pretrain")
    assert not [c for c in table.columns if "MFU" in c] and "MFU" not in note


def test_joules_per_token_are_shown_where_a_counter_was_read_and_dropped_elsewhere():
    metrics = {"tokens_per_s": 5.0e3, "batch_size": 1, "joules_per_token": 0.04567}
    table, note = training_table(cells_frame([record("baseline", "1", "ok", metrics)]), "pretrain")
    assert table.iloc[0]["b=1 J/token"] == "0.0457" and "J/token:" in note
    cpu = {"tokens_per_s": 5.0e3, "batch_size": 1, "joules_per_token": None}
    table, note = training_table(cells_frame([record("baseline", "1", "ok", cpu)]), "pretrain")
    assert "b=1 J/token" not in table.columns and "J/token" not in note


def test_the_13b_over_7b_ratio_pairs_configurations_measured_on_both():
    records = []
    for model, speed in [("llama2-7b", 1000.0), ("llama2-13b", 700.0)]:
        r = record("lora", "1", "ok", {"tokens_per_s": speed, "batch_size": 1})
        r["cell"].update(stage="finetune", model=model)
        r["key"] = f"finetune/cpu/{model}/torch/lora/w1/b1"
        records.append(r)
    lonely = record("qlora", "1", "ok", {"tokens_per_s": 500.0, "batch_size": 1})
    lonely["cell"].update(stage="finetune", model="llama2-7b")
    table = size_ratio_table(cells_frame([*records, lonely]), "finetune")
    assert list(table["method"]) == ["lora"]  # qlora has no 13B twin
    assert table.iloc[0]["llama2-13b / llama2-7b"] == 0.7
    assert table.iloc[0]["slower by"] == "30%"


def test_no_records_give_empty_tables_not_errors():
    cells = cells_frame([])
    assert training_table(cells, "finetune")[0].empty
    assert scaling_table(cells, "pretrain").empty and size_ratio_table(cells, "finetune").empty


def ladder_record(method, rung, status, metrics, compiled=False):
    rung_record = record(method, "max", status, metrics)
    rung_record["cell"]["stage"] = "ladder"
    rung_record["key"] = rung_record["key"].replace("pretrain/", "ladder/")
    rung_record["settings"] = {
        "ladder_rung": rung,
        "attention_kernel": "eager" if method == "baseline" else "torch SDPA",
        "optimizer": "torch.optim.AdamW (fused)" if "fused" in method else "torch.optim.AdamW",
        "compile": {"mode": "default"} if compiled else None,
    }
    return rung_record


def test_the_ladder_keeps_the_config_order_and_takes_speed_ups_from_the_first_rung(tmp_path):
    def speed(tokens, **extra):
        return {"tokens_per_s": tokens, "peak_rss_gb": 0.5, "batch_size": 8, **extra}

    records = [  # a rung with more features may come first: the config's order wins
        ladder_record("flash+fused+compile", 2, "ok", speed(300.0, compile_s=4.2), True),
        ladder_record("baseline", 0, "ok", speed(100.0)),
        ladder_record("sdpa+fused+compile", 1, "oom", {}, True),
    ]
    table, note = ladder_table(cells_frame(records))
    assert list(table["rung"]) == ["baseline", "sdpa+fused+compile", "flash+fused+compile"]
    assert list(table["speed-up"]) == ["1.00x", "OOM", "3.00x"]
    assert list(table["compile (s)"]) == ["-", "OOM", "4.20"]
    assert list(table["batch"]) == ["8", "OOM", "8"]
    assert "MFU" not in table.columns  # no peak FLOP/s on a CPU
    assert "same model FLOPs per token" in note
    ladder_figure(cells_frame(records), tmp_path / "l.png", tmp_path / "l.pdf")
    assert (tmp_path / "l.png").stat().st_size > 0


def test_no_ladder_gives_an_empty_table_and_a_figure_that_says_so(tmp_path):
    assert ladder_table(cells_frame(RECORDS))[0].empty
    ladder_figure(cells_frame([]), tmp_path / "l.png", tmp_path / "l.pdf")
    assert (tmp_path / "l.pdf").exists()


def test_the_device_time_table_splits_searching_engine_start_and_measuring():
    from llmdissect.report.budget import gpu_time_table

    gpu = dict(MANIFEST, accelerators={"gpus": [{"name": "NVIDIA H200"}]})
    searched = dict(record("baseline", "max", "ok", {"batch_size": 26}), environment=gpu)
    searched["duration_s"] = 344.0
    searched["settings"] = {"batch_search": {"probes": [{"batch": b} for b in (1, 4, 27, 26)],
                                             "seconds": 80.0}}  # fmt: skip
    serving = ServingCell("cpu", "tiny", "vllm", "burst", 1)
    served = make_record(
        key=serving.key,
        cell=serving.as_dict(),
        status="ok",
        reason=None,
        metrics={"startup_s": 60.0},
        settings={},
        environment=gpu,
        started_at=now_iso(),
        started_monotonic=time.monotonic(),
    )
    served["duration_s"] = 100.0
    table, note = gpu_time_table(cells_frame([searched, served, RECORDS[0]]))
    rows = {(r["stage"], r["cell"]): r for r in table.to_dict("records")}
    search = rows[("pretrain", "tiny/torch/baseline/w1/bmax")]
    assert (search["search probes"], search["searching (s)"], search["measuring (s)"]) == (
        "4", "80", "264"
    )  # fmt: skip
    assert search["GPU time (min)"] == "5.7"
    engine = rows[("serve", "tiny/vllm/burst/w1")]
    assert (engine["engine start (s)"], engine["measuring (s)"]) == ("60", "40")
    assert rows[("pretrain", "tiny/torch/baseline/w1/b1")]["GPU time (min)"] == "-"  # a CPU cell
    total = rows[("all stages", "3 cells")]
    assert total["GPU time (min)"] == "7.4" and total["searching (s)"] == "80"
    assert "wall time" in note
