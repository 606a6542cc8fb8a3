"""Repeats: each final measurement its own probe, the record their median with a 95% interval;
tables show the interval and mark a speed-up inside the noise."""

import statistics

import pandas as pd
import pytest

from llmdissect.report.format import shown_spread
from llmdissect.report.profiling import flash_table
from llmdissect.training.repeats import combine, interval, repeating


def outcome(tokens_per_s, status="ok", batch=4):
    metrics = {"tokens_per_s": tokens_per_s, "batch_size": batch, "loss_last": 1.0}
    return {"status": status, "metrics": metrics, "details": {"attention": "sdpa"}}


def test_the_interval_is_students_t_over_the_repeats():
    low, high = interval([100.0, 110.0, 120.0])
    # mean 110, standard deviation 10, t(0.975, 2) = 4.303: 110 -/+ 4.303 x 10 / sqrt(3)
    assert (low, high) == pytest.approx((110 - 24.844, 110 + 24.844), abs=1e-3)
    assert interval([5.0]) == (5.0, 5.0)


def test_combined_repeats_keep_the_median_every_value_and_the_interval():
    combined = combine([outcome(100.0), outcome(130.0), outcome(110.0)])
    metrics = combined["metrics"]
    assert metrics["tokens_per_s"] == 110.0 and metrics["batch_size"] == 4
    assert metrics["repeats"] == 3
    assert metrics["repeat_values"]["tokens_per_s"] == [100.0, 130.0, 110.0]
    assert (
        metrics["tokens_per_s_ci_low"]
        < statistics.fmean([100, 130, 110])
        < metrics["tokens_per_s_ci_high"]
    )
    assert combined["details"] == {"attention": "sdpa"} and combined["status"] == "ok"


def test_a_failed_repeat_is_named_and_left_out():
    combined = combine([outcome(100.0), outcome(0.0, status="oom"), outcome(120.0)])
    assert combined["metrics"]["repeats"] == 2 and combined["metrics"]["tokens_per_s"] == 110.0
    assert combined["reason"].startswith("1 of 3 repeats failed (oom")
    alone = combine([outcome(100.0), outcome(0.0, status="oom")])["metrics"]
    assert alone["repeats"] == 1 and "tokens_per_s_ci_low" not in alone


def test_only_the_final_measurement_repeats_and_only_when_it_ran():
    calls = []

    def probe(spec, name, keep_steps):
        calls.append(name)
        return outcome(100.0 + len(calls), status="oom" if spec == "too big" else "ok")

    measure = repeating(probe, 3)
    measure("fits", "search_b4", False)
    assert calls == ["search_b4"]
    assert measure("fits", "measure", True)["metrics"]["repeats"] == 3
    assert calls[1:] == ["measure", "measure_r2", "measure_r3"]
    calls.clear()
    assert measure("too big", "measure", True)["status"] == "oom" and calls == ["measure"]
    assert repeating(probe, 1) is probe


def test_tables_show_the_interval_and_mark_a_speed_up_inside_the_noise():
    row = pd.Series({"status": "ok", "tokens_per_s": 1234.0, "tokens_per_s_ci_low": 1100.0,
                     "tokens_per_s_ci_high": 1350.0})  # fmt: skip
    assert shown_spread(row, "tokens_per_s") == "1,234 (1,100-1,350)"
    assert shown_spread(row.drop(["tokens_per_s_ci_low"]), "tokens_per_s") == "1,234"

    def profiled(method, forward, low, high):
        return {"stage": "profile", "platform": "cpu", "model": "tiny", "framework": "torch",
                "method": method, "world_size": 1, "batch": "4", "status": "ok",
                "module_attention_forward_ms": forward, "module_attention_forward_ms_ci_low": low,
                "module_attention_forward_ms_ci_high": high, "module_attention_backward_ms": 2.0,
                "gpu": "cpu", "key": method}  # fmt: skip

    noisy = flash_table(pd.DataFrame([profiled("baseline", 10.0, 8.0, 12.0),
                                      profiled("flash", 9.0, 7.0, 11.0)]))  # fmt: skip
    assert noisy.iloc[0]["forward faster"].endswith("within noise)")
    clear = flash_table(pd.DataFrame([profiled("baseline", 10.0, 9.5, 10.5),
                                      profiled("flash", 6.0, 5.5, 6.5)]))  # fmt: skip
    assert clear.iloc[0]["forward faster"] == "40.0% (31.6% to 47.6%)"
