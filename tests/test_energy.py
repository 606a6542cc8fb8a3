"""Energy counters: RAPL read from a powercap tree laid out as the kernel does (a fixture folder,
since this machine exposes none), NVML's absence named, and windows that wrap."""

from pathlib import Path

import pytest

from llmdissect.energy import (
    CounterUnavailable,
    EnergyWindow,
    NvmlCounter,
    RaplCounter,
    open_counter,
    visible_gpu_ids,
)


def powercap_tree(root: Path, packages: dict[str, tuple[int, int]]) -> Path:
    for name, (energy_uj, range_uj) in packages.items():
        zone = root / name
        zone.mkdir(parents=True)
        (zone / "energy_uj").write_text(f"{energy_uj}\n")
        (zone / "max_energy_range_uj").write_text(f"{range_uj}\n")
    # a sub-zone (the cores of package 0) must not be counted twice
    (root / "intel-rapl:0:0").mkdir()
    (root / "intel-rapl:0:0" / "energy_uj").write_text("1\n")
    return root


def set_energy(root: Path, name: str, energy_uj: int) -> None:
    (root / name / "energy_uj").write_text(f"{energy_uj}\n")


def test_rapl_sums_packages_and_survives_a_wrap(tmp_path):
    root = powercap_tree(
        tmp_path, {"intel-rapl:0": (900_000_000, 1_000_000_000), "intel-rapl:1": (5, 10**9)}
    )
    window = EnergyWindow("cpu", counter=RaplCounter(root)).start()
    set_energy(root, "intel-rapl:0", 100_000_000)  # wrapped: 900 J -> 1000 J -> 100 J
    set_energy(root, "intel-rapl:1", 2_000_005)
    window.stop()
    assert window.joules == pytest.approx(200.0 + 2.0)
    metrics = window.metrics(tokens=101)
    assert metrics["energy_j"] == pytest.approx(202.0)
    assert metrics["joules_per_token"] == pytest.approx(2.0)
    assert metrics["energy_source"] == "rapl" and metrics["energy_devices"] == 2


def test_no_counter_leaves_energy_null_with_the_reason(tmp_path):
    with pytest.raises(CounterUnavailable, match="no RAPL package counters"):
        RaplCounter(tmp_path)
    window = EnergyWindow("cpu")
    window.reason = "no RAPL package counters under /nowhere"
    metrics = window.stop().metrics(tokens=10)
    assert metrics == {
        "energy_j": None,
        "joules_per_token": None,
        "energy_reason": "no RAPL package counters under /nowhere",
    }


def test_a_cuda_cell_without_the_driver_library_says_so(monkeypatch):
    monkeypatch.setattr("llmdissect.energy.NVML_LIBRARY", "libnot-a-driver.so.9")
    with pytest.raises(CounterUnavailable, match="no NVML library"):
        open_counter("cuda:0")
    metrics = EnergyWindow("cuda:0").start().stop().metrics(tokens=5)
    assert metrics["energy_j"] is None and "NVML" in metrics["energy_reason"]


def test_mig_slices_have_no_counter_of_their_own():
    counter = NvmlCounter.__new__(NvmlCounter)  # no driver here: only the name check runs
    with pytest.raises(CounterUnavailable, match="MIG slice"):
        counter.handle("MIG-0f1e2d3c")


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("", []),
        ("0", ["0"]),
        ("2, 3", ["2", "3"]),
        ("GPU-ab,GPU-cd", ["GPU-ab", "GPU-cd"]),
    ],
)
def test_visible_gpus_follow_cuda_visible_devices(value, expected):
    env = {} if value is None else {"CUDA_VISIBLE_DEVICES": value}
    assert visible_gpu_ids(env) == expected
