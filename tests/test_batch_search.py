import pytest

from llmdissect.training.batch_search import max_batch_search, predicted_batch_search


@pytest.mark.parametrize("largest", [1, 2, 3, 5, 6, 7, 8, 13, 31, 32, 33, 100])
def test_finds_the_largest_fitting_batch(largest):
    result = max_batch_search(lambda b: b <= largest, start=1, limit=1024)
    assert result.max_batch == largest
    assert not result.hit_limit


def test_doubles_then_bisects():
    result = max_batch_search(lambda b: b <= 6, start=1, limit=64)
    assert [b for b, _ in result.batches] == [1, 2, 4, 8, 6, 7]


@pytest.mark.parametrize("largest", [1, 3, 7, 8, 9, 20])
def test_a_start_guess_that_does_not_fit_falls_back_to_one_then_bisects(largest):
    result = max_batch_search(lambda b: b <= largest, start=8, limit=64)
    assert result.max_batch == largest
    if largest < 8:
        assert result.batches[:2] == [(8, False), (1, True)]


def test_nothing_fits_from_a_higher_start():
    result = max_batch_search(lambda b: False, start=8, limit=64)
    assert result.max_batch is None
    assert [b for b, _ in result.batches] == [8, 1]


def test_nothing_fits():
    result = max_batch_search(lambda b: False, start=1, limit=64)
    assert result.max_batch is None and result.batches == [(1, False)]


def test_stops_at_the_limit_and_says_so():
    result = max_batch_search(lambda b: True, start=1, limit=20)
    assert result.max_batch == 20 and result.hit_limit
    assert [b for b, _ in result.batches] == [1, 2, 4, 8, 16, 20]


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        max_batch_search(lambda b: True, start=8, limit=4)


@pytest.mark.parametrize(
    ("full_run_fits_up_to", "expected_runs"), [(67, [67]), (65, [67, 63, 65, 66]), (1, None)]
)
def test_full_runs_step_down_then_bisect_when_the_fit_check_was_optimistic(
    full_run_fits_up_to, expected_runs
):
    # a fault injected by a stand-in for the probe: full runs that need more memory than the
    # short fit check said (allocator fragmentation on a GPU; a CPU run cannot show it)
    from llmdissect.models import shape_from_config
    from llmdissect.training import cell
    from llmdissect.training.spec import TrainSpec

    runs = []

    def fake_probe(spec, name, keep):
        runs.append(spec.batch_size)
        fits = spec.batch_size <= full_run_fits_up_to
        return {"status": "ok" if fits else "oom", "batch": spec.batch_size}

    spec = TrainSpec(shape_from_config("micro"), "torch", "baseline", 67, samples_path="")
    settings = {"batch_search": {}}
    outcome = cell.measure_largest(spec, 67, settings, fake_probe, lambda _: None, "key")
    assert outcome["batch"] == full_run_fits_up_to
    if expected_runs:
        assert runs == expected_runs
    assert settings["batch_search"].get("full_run_oom", []) == [
        b for b in runs if b > full_run_fits_up_to
    ]
    assert len(runs) <= 12


def linear_memory(base_gb: float, per_sample_gb: float, capacity_gb: float, noise=None):
    """A stand-in probe: memory on a line (with an optional per-batch error), out of memory
    past the capacity."""

    def measure(batch: int):
        used = base_gb + per_sample_gb * batch + (noise(batch) if noise else 0.0)
        return used <= capacity_gb, used, capacity_gb

    return measure


@pytest.mark.parametrize(
    ("base", "slope", "start"),
    [(0.6, 0.2, 4), (108.0, 3.1, 2), (20.0, 0.9, 8), (20.0, 0.9, 32), (1.0, 0.01, 16)],
)
def test_a_straight_memory_line_is_settled_in_four_probes(base, slope, start):
    capacity = 139.0 if base > 1 else 1.5
    measure = linear_memory(base, slope, capacity)
    largest = max(b for b in range(1, 1025) if measure(b)[0])
    result = predicted_batch_search(measure, start=start, limit=1024)
    assert result.max_batch == largest
    assert len(result.probes) <= 4
    assert result.method == "predicted"


@pytest.mark.parametrize("error", [-0.05, 0.05, 0.3, -0.1])
def test_a_line_that_is_off_still_finds_the_edge_by_bisecting_what_is_left(error):
    # memory bends away from the line through batches 1 and 4 by `error` GB per sample past 4
    measure = linear_memory(1.0, 0.2, 20.0, noise=lambda b: error * max(0, b - 4))
    largest = max(b for b in range(1, 1025) if measure(b)[0])
    result = predicted_batch_search(measure, start=4, limit=1024)
    assert result.max_batch == largest
    assert len(result.probes) <= 4 + 7  # the line's probes, then a bisection of what is left
    fits = dict(result.batches)
    assert fits[largest] and not fits.get(largest + 1, False) and (largest + 1) in fits


@pytest.mark.parametrize("largest", [1, 2, 3, 5, 8, 13])
def test_a_start_that_does_not_fit_halves_the_gap_then_predicts(largest):
    measure = linear_memory(1.0, 1.0, 1.0 + largest + 0.5)
    result = predicted_batch_search(measure, start=16, limit=64)
    assert result.max_batch == largest
    assert result.batches[:2] == [(1, True), (16, False)]


def test_predicted_search_nothing_fits_and_the_limit():
    assert predicted_batch_search(linear_memory(5.0, 1.0, 4.0), start=4).max_batch is None
    capped = predicted_batch_search(linear_memory(1.0, 0.1, 100.0), start=4, limit=20)
    assert capped.max_batch == 20 and capped.hit_limit
    assert len(capped.probes) == 3  # 1, 4, then the limit the line allows


def test_without_memory_readings_it_grows_then_bisects():
    measure = lambda b: (b <= 37, None, None)  # noqa: E731
    result = predicted_batch_search(measure, start=4, limit=1024)
    assert result.max_batch == 37 and result.method == "predicted"


def test_predicted_search_refuses_bad_bounds():
    with pytest.raises(ValueError):
        predicted_batch_search(linear_memory(1.0, 0.1, 10.0), start=8, limit=4)


def test_on_the_tiny_model_the_predicted_search_agrees_with_bisection_in_fewer_probes(tmp_path):
    # real probes: the tiny Llama at sequence 350 under the default config's 1.5 GiB cap
    from llmdissect.cells import TrainingCell
    from llmdissect.data import training_samples, write_training_samples
    from llmdissect.models import LLAMA2_SHAPES
    from llmdissect.training.cell import ProbeLimits, SearchSettings, run_training_cell
    from llmdissect.training.spec import TrainSpec

    samples = tmp_path / "train.jsonl"
    write_training_samples(samples, training_samples(0, 32, 350, 0, 32000))
    spec = TrainSpec(
        LLAMA2_SHAPES["tiny"], "torch", "baseline", 1, str(samples),
        warmup_steps=0, measured_steps=1, memory_limit_gb=1.5, cpu_threads=2,
    )  # fmt: skip
    cell = TrainingCell("pretrain", "cpu", "tiny", "torch", "baseline", 1, "max")
    found = {}
    for method in ("bisect", "predicted"):
        record = run_training_cell(
            cell,
            spec,
            SearchSettings(start=1 if method == "bisect" else 4, limit=64, method=method),
            settings={"world_size": 1},
            record_path=tmp_path / f"{method}.json",
            steps_path=tmp_path / f"{method}.steps.jsonl",
            workdir=tmp_path / method,
            limits=ProbeLimits(timeout_s=300),
            log=lambda message: None,
        )
        assert record["status"] == "ok", record["reason"]
        found[method] = (record["metrics"]["batch_size"], record["settings"]["batch_search"])
    (bisected, by_bisection), (predicted, by_line) = found["bisect"], found["predicted"]
    assert abs(predicted - bisected) <= 1
    assert by_line["probe_count"] < by_bisection["probe_count"]
    assert by_line["probe_count"] <= 4
    assert by_line["method"] == "predicted" and by_bisection["method"] == "bisect"


def test_on_a_gpu_the_line_follows_the_forward_backward_peak_not_the_optimizer_step():
    # the slope is Megatron-core 7B's on an H200 between batch 19 and 26 (3.31 GB per sample;
    # 26 fitted, 27 did not); the whole step's peak sat at 62.8 GB at batch 1 and 4, set by the
    # optimizer step. A line that grows from batch 1 settles the edge in 4 probes.
    from llmdissect.training.memory import search_memory

    def gpu_metrics(batch: int) -> dict:
        growing = 37.6 + 3.31 * batch
        return {
            "memory_capacity_gb": 139.8,
            "device_overhead_gb": 1.3,
            "peak_mem_allocated_gb": max(62.8, growing),
            "peak_mem_forward_backward_allocated_gb": growing,
        }

    def measure(batch: int):
        return (batch <= 26, *search_memory(gpu_metrics(batch)))

    result = predicted_batch_search(measure, start=4, limit=256)
    assert result.max_batch == 26
    assert len(result.probes) <= 4

    whole_step = {k: v for k, v in gpu_metrics(4).items() if "forward" not in k}
    assert search_memory(whole_step)[0] == 62.8  # without the split, the flat peak


def test_search_memory_on_the_cpu_is_the_data_segment_against_the_cap():
    from llmdissect.training.memory import search_memory

    assert search_memory({"memory_capacity_gb": 1.5, "peak_data_gb": 0.8}) == (0.8, 1.5)
    assert search_memory({"memory_capacity_gb": None, "peak_data_gb": 0.8}) == (None, None)


def test_phase_peaks_keep_forward_and_backward_apart_and_together():
    from llmdissect.training.memory import PhasePeaks

    peaks = PhasePeaks("cuda:0")  # no CUDA call until a phase is entered
    peaks.allocated = {"forward": 5, "backward": 7, "optimizer": 9}
    assert peaks.peaks() == {"forward": 5, "backward": 7, "optimizer": 9, "forward_backward": 7}
    peaks.allocated = {"optimizer": 9}
    assert "forward_backward" not in peaks.peaks()
