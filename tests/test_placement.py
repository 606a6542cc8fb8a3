"""GPU placement on one machine, with faked devices: cells run side by side only on disjoint
devices, each seeing its own CUDA_VISIBLE_DEVICES (the mechanism; no GPU is used)."""

import multiprocessing
import os
import time
from datetime import datetime, timedelta

import pytest
from conftest import copy_workflow, run_snakemake

from llmdissect.placement import cell_gpus, cell_thread_count, claimed_devices
from llmdissect.records import read_record
from llmdissect.training.probe import multi_node_command


def hold(name, count, lock_dir, seconds, queue):
    os.environ["LLMDISSECT_DEVICES"] = "0,1,2"
    with claimed_devices(count, lock_dir, poll_s=0.05, log=lambda *_: None) as devices:
        queue.put((name, "start", time.monotonic(), os.environ["CUDA_VISIBLE_DEVICES"], devices))
        time.sleep(seconds)
        queue.put((name, "end", time.monotonic(), None, devices))  # taken before the release


def test_claims_are_disjoint_and_a_claim_waits_for_free_devices(tmp_path):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    first = context.Process(target=hold, args=("first", 2, tmp_path, 1.5, queue))
    first.start()
    assert queue.get(timeout=10)[:2] == ("first", "start")
    second = context.Process(target=hold, args=("second", 2, tmp_path, 0.1, queue))  # waits
    second.start()
    events = [queue.get(timeout=20) for _ in range(3)]
    first.join(10)
    second.join(10)
    # the queue delivers in the order the messages were sent, not claimed: compare the clocks
    times = {(name, kind): at for name, kind, at, *_ in events}
    assert times[("second", "start")] >= times[("first", "end")]
    _, _, _, visible, devices = next(e for e in events if e[:2] == ("second", "start"))
    assert visible == ",".join(devices) and len(devices) == 2


def test_a_claim_larger_than_the_machine_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMDISSECT_DEVICES", "0,1")
    with pytest.raises(RuntimeError, match="needs 3 GPUs and this machine has 2"):
        with claimed_devices(3, tmp_path):
            pass


def test_cell_gpus_per_platform():
    assert cell_gpus({"device": "cuda"}, 4) == 4
    assert cell_gpus({"device": "cpu"}, 4) == 0
    assert cell_gpus({"device": "cpu", "gpus_per_process": 1}, 2) == 2


def test_a_cell_over_several_nodes_meets_at_the_first_node():
    command = multi_node_command(16, 2, ["gpu07", "gpu08"], "4242", ["-m", "probe", "spec.json"])
    text = " ".join(command)
    assert command[:5] == [
        "srun", "--overlap", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"
    ]  # fmt: skip
    assert "--nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d" in text
    assert "--rdzv_endpoint=gpu07:24242 --rdzv_id=llmdissect-4242" in text
    assert text.endswith("-m probe spec.json")
    with pytest.raises(ValueError, match="does not split evenly"):
        multi_node_command(6, 4, ["a", "b", "c", "d"], "1", [])


def endpoint_port(job_id: str) -> int:
    command = multi_node_command(16, 2, ["gpu07", "gpu08"], job_id, ["-m", "probe"])
    endpoint = next(arg for arg in command if arg.startswith("--rdzv_endpoint="))
    return int(endpoint.rpartition(":")[2])


def test_two_jobs_meeting_on_one_first_node_use_different_ports():
    first, second = endpoint_port("4242"), endpoint_port("4243")
    assert first != second
    assert endpoint_port("4242") == first  # the same job's nodes all find it
    for port in (first, second, endpoint_port("123456789")):
        assert 1024 <= port < 32768  # neither a well-known nor an ephemeral port


@pytest.mark.workflow
def test_cells_side_by_side_on_three_faked_devices(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "gpus.yaml").write_text(
        "platforms:\n  cpu:\n    device: cpu\n    gpus_per_process: 1\n"
    )
    prefix = "results/records/pretrain/cpu/micro"
    cells = [
        f"{prefix}/torch/baseline/w1/b1.json",
        f"{prefix}/deepspeed/zero2/w2/b2.json",
        f"{prefix}/megatron/baseline/w1/b1.json",
        f"{prefix}/torch/baseline/w1/b4096.json",
    ]
    os.environ["LLMDISSECT_DEVICES"] = "0,1,2"
    try:
        done = run_snakemake(
            workdir, *cells, "--cores", "4", "--resources", "gpu=3",
            "--configfile", "tests/config/test.yaml", "gpus.yaml",
        )  # fmt: skip
    finally:
        del os.environ["LLMDISSECT_DEVICES"]
    assert done.returncode == 0, done.stderr[-3000:]
    spans = []
    for path in cells:
        record = read_record(workdir / path)
        devices = set(record["environment"]["visible_devices"].split(","))
        world_size = int(record["cell"]["world_size"])
        assert len(devices) == world_size
        # 4 cores shared by cells on 3 GPUs, each process of a cell with its part of them
        threads = record["settings"]["cpu_threads"]
        assert threads == cell_thread_count(4, world_size, 3)
        per_process = str(max(1, threads // world_size))
        assert record["environment"]["threads"]["OMP_NUM_THREADS"] == per_process
        start = datetime.fromisoformat(record["started_at"])
        spans.append((start, start + timedelta(seconds=record["duration_s"]), devices))
    overlapping = 0
    for i, (start, end, devices) in enumerate(spans):
        for other_start, other_end, other in spans[i + 1 :]:
            if start < other_end and other_start < end:
                overlapping += 1
                assert not devices & other, "two cells at once on one device"
    assert overlapping, "no two cells ran side by side"


@pytest.mark.parametrize(
    ("cores", "cell_gpus", "machine_gpus", "threads"),
    [
        (16, 0, None, 16),  # a CPU cell: they run one at a time, each with every core
        (16, 1, None, 16),  # a GPU cell, GPUs of the run unknown: it may be alone
        (16, 1, 8, 2),  # one of eight GPU cells side by side
        (16, 2, 8, 4),
        (4, 1, 8, 1),  # never below one thread
        (16, 8, 4, 16),  # more GPUs than the run was given: all the cores, not more
    ],
)
def test_a_cell_gets_its_share_of_the_cores(cores, cell_gpus, machine_gpus, threads):
    assert cell_thread_count(cores, cell_gpus, machine_gpus) == threads
