"""The offline runner's contract with its worker, shown with stand-in workers (the real vLLM
worker runs in the test DAG): marks bracket the energy window, the counts file is the result,
and a worker that dies is a failure naming its exit code and its log."""

import sys
from pathlib import Path

import pytest

from llmdissect.energy import EnergyWindow
from llmdissect.serving.offline import OfflineFailed, offline_metrics, run_offline
from llmdissect.serving.vllm_offline_worker import GENERATED, GENERATING

COUNTS = (
    '{"startup_s": 1.0, "elapsed_s": 2.0, "requests": 4, "prompt_tokens": 40,'
    ' "output_tokens": 32, "token_count_mismatches": 0}'
)


def stand_in_worker(tmp_path, body: str) -> tuple[list[str], Path]:
    """A worker stand-in: `body` runs with `out` (the counts path) and the marks defined."""
    out = tmp_path / "counts.json"
    code = f"GENERATING, GENERATED, out = {GENERATING!r}, {GENERATED!r}, {str(out)!r}\n{body}"
    return [sys.executable, "-c", code], out


def test_the_counts_come_back_and_the_energy_window_spans_the_marks(tmp_path):
    body = (
        "import time, pathlib\n"
        "print('loading'); print(GENERATING, flush=True); time.sleep(0.3)\n"
        "print(GENERATED, flush=True)\n"
        f"pathlib.Path(out).write_text({COUNTS!r})\n"
    )
    energy = EnergyWindow("cpu")
    counts = run_offline(*stand_in_worker(tmp_path, body), {}, tmp_path / "log", 60, energy)
    assert counts["output_tokens"] == 32
    assert energy.seconds >= 0.3  # opened at the first mark, closed at the second
    metrics = offline_metrics(counts)
    assert metrics["output_tokens_per_s"] == 16 and metrics["total_tokens_per_s"] == 36
    assert metrics["completed"] == 4 and "ttft_median_ms" not in metrics


@pytest.mark.parametrize(
    "body, expected",
    [
        ("import sys; print('CUDA out of memory'); sys.exit(3)", "code 3 before generating"),
        ("print(GENERATING, flush=True); print(GENERATED, flush=True)", "without its counts"),
    ],
)
def test_a_worker_that_dies_is_a_failure_with_its_log(tmp_path, body, expected):
    with pytest.raises(OfflineFailed) as caught:
        run_offline(*stand_in_worker(tmp_path, body), {}, tmp_path / "log", 60, EnergyWindow("cpu"))
    assert expected in str(caught.value)
    if "memory" in body:
        assert "CUDA out of memory" in str(caught.value)  # the log's tail: an OOM is seen


def test_a_worker_that_hangs_is_stopped_at_the_deadline(tmp_path):
    body = "import time; time.sleep(60)"
    with pytest.raises(OfflineFailed) as caught:
        run_offline(*stand_in_worker(tmp_path, body), {}, tmp_path / "log", 1, EnergyWindow("cpu"))
    assert "not generating within 1 s" in str(caught.value)


def test_an_engine_flag_the_offline_worker_does_not_take_is_refused_by_name(tmp_path):
    """The worker gets the served cell's flags; one it cannot pass on to vLLM fails the cell
    (before vLLM is imported) instead of measuring other settings than the served cell's."""
    from llmdissect.serving.offline import offline_command

    template = {"python": sys.executable, "dtype": "float32", "tensor_parallel_size": 1,
                "memory_fraction": 0.1, "extra_args": ["--enforce-eager"]}  # fmt: skip
    counts = tmp_path / "counts.json"
    command = offline_command(template, tmp_path, tmp_path / "p.jsonl", 8, 64, counts)
    with pytest.raises(OfflineFailed) as caught:
        run_offline(command, counts, {}, tmp_path / "log", 60, EnergyWindow("cpu"))
    assert "unrecognized arguments: --enforce-eager" in str(caught.value)
