import pytest

from llmdissect.training.batch_search import max_batch_search


@pytest.mark.parametrize("largest", [1, 2, 3, 5, 6, 7, 8, 13, 31, 32, 33, 100])
def test_finds_the_largest_fitting_batch(largest):
    result = max_batch_search(lambda b: b <= largest, start=1, limit=1024)
    assert result.max_batch == largest
    assert not result.hit_limit


def test_doubles_then_bisects():
    result = max_batch_search(lambda b: b <= 6, start=1, limit=64)
    assert [b for b, _ in result.probes] == [1, 2, 4, 8, 6, 7]


@pytest.mark.parametrize("largest", [1, 3, 7, 8, 9, 20])
def test_a_start_guess_that_does_not_fit_falls_back_to_one_then_bisects(largest):
    result = max_batch_search(lambda b: b <= largest, start=8, limit=64)
    assert result.max_batch == largest
    if largest < 8:
        assert result.probes[:2] == [(8, False), (1, True)]


def test_nothing_fits_from_a_higher_start():
    result = max_batch_search(lambda b: False, start=8, limit=64)
    assert result.max_batch is None
    assert [b for b, _ in result.probes] == [8, 1]


def test_nothing_fits():
    result = max_batch_search(lambda b: False, start=1, limit=64)
    assert result.max_batch is None and result.probes == [(1, False)]


def test_stops_at_the_limit_and_says_so():
    result = max_batch_search(lambda b: True, start=1, limit=20)
    assert result.max_batch == 20 and result.hit_limit
    assert [b for b, _ in result.probes] == [1, 2, 4, 8, 16, 20]


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
