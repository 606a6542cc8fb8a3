"""A load sweep: one engine start, each level its own load and trace, one table row per level,
and the sweep figure; the config refuses sweeps that cannot run."""

import pytest
from test_serving_faults import serve_cell

from llmdissect.config import workload_problems
from llmdissect.report.serving import serving_table, sweep_figure, throughput_figure
from llmdissect.report.tidy import cells_frame, tidy_frame
from llmdissect.serving.trace import read_traces


def test_a_concurrency_sweep_measures_each_level_on_one_engine_start(tmp_path):
    record = serve_cell(tmp_path, [], arrivals="concurrency", sweep=[1, 4], prompts_per_level=6)
    assert record["status"] == "ok", record["reason"]
    levels = record["metrics"]["levels"]
    assert [part["level"] for part in levels] == [1, 4]
    assert [part["completed"] for part in levels] == [6, 6]
    assert record["metrics"]["startup_s"] > 0  # started once, kept beside the levels
    assert "output_tokens_per_s" not in record["metrics"]  # no number mixes the levels
    traces = read_traces(tmp_path / "record.trace.jsonl")
    assert [t.level for t in traces] == [1] * 6 + [4] * 6
    # one request in flight at level 1: each is sent only when the one before has finished
    first = sorted((t for t in traces if t.level == 1), key=lambda t: t.sent)
    assert all(b.sent >= a.finished for a, b in zip(first, first[1:], strict=False))

    cells = cells_frame([record])
    assert list(cells["method"]) == ["burst@1", "burst@4"]
    assert list(cells["sweep_level"]) == [1, 4]
    assert set(tidy_frame([record])["key"]) == {record["key"] + "@1", record["key"] + "@4"}
    assert list(serving_table(cells)["workload"]) == ["burst@1", "burst@4"]
    sweep_figure(cells, tmp_path / "sweep.png", tmp_path / "sweep.pdf")
    assert (tmp_path / "sweep.png").stat().st_size > 10_000
    throughput_figure(cells, tmp_path / "f6.png", tmp_path / "f6.pdf")  # levels are not Fig. 6 bars


@pytest.mark.parametrize(
    "workload, problem",
    [
        ({"arrivals": "burst", "sweep": [1]}, "a sweep needs poisson or concurrency"),
        ({"arrivals": "concurrency", "sweep": [1.5]}, "whole numbers"),
        ({"arrivals": "poisson", "sweep": [1], "rate": 2}, "w.rate: a sweep sets it per level"),
        ({"arrivals": "poisson", "rate": 2, "prompts_per_level": 4}, "only a sweep has levels"),
        ({"arrivals": "poisson"}, "w.rate: required for poisson arrivals"),
    ],
)
def test_sweeps_that_cannot_run_are_refused_by_name(workload, problem):
    (found,) = workload_problems("w", workload)
    assert problem in found


def test_a_poisson_sweep_is_accepted():
    assert workload_problems("w", {"arrivals": "poisson", "sweep": [0.5, 2]}) == []


def test_a_command_engine_records_the_version_its_version_command_prints(tmp_path):
    version = ["{python}", "-c", "print('warming up'); print('synthetic-engine 1.2.3')"]
    record = serve_cell(tmp_path, [], template_keys={"version_command": version})
    assert record["status"] == "ok", record["reason"]
    assert record["settings"]["engine_version"] == "synthetic-engine 1.2.3"
