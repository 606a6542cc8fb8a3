"""Faults a long study meets, run through Snakemake: a probe that crashes, and the whole run killed
at once. Both end with every cell recorded and the report built."""

import os
import signal
import subprocess
import time

import psutil
import pytest
from conftest import BIN, copy_workflow
from conftest import run_snakemake as snakemake

from llmdissect.records import read_record
from llmdissect.training.probe import TEST_SEGFAULT_VARIABLE

pytestmark = pytest.mark.workflow

PRETRAIN = "results/records/pretrain/cpu/micro"
ONLY_PRETRAINING = "finetune: null\nserve: null\nprofile: null\n"


def small_study(tmp_path, grid: str):
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "small.yaml").write_text(f"pretrain:\n  grid:\n{grid}{ONLY_PRETRAINING}")
    return workdir, ["--configfile", "tests/config/test.yaml", "small.yaml"]


def test_a_crashing_probe_is_retried_then_recorded_and_the_report_is_built(tmp_path):
    workdir, config = small_study(
        tmp_path,
        "    - frameworks: {torch: [baseline]}\n      batches: [1]\n"
        "    - frameworks: {deepspeed: [zero2]}\n      batches: [1]\n      world_sizes: [2]\n",
    )
    # rank 0 of the two-process cell kills itself with SIGSEGV on every attempt
    os.environ[TEST_SEGFAULT_VARIABLE] = "deepspeed/zero2/w2"
    try:
        done = snakemake(workdir, "--cores", "2", *config)
    finally:
        del os.environ[TEST_SEGFAULT_VARIABLE]
    assert done.returncode == 0, done.stderr[-3000:]
    crashed = read_record(workdir / f"{PRETRAIN}/deepspeed/zero2/w2/b1.json")
    assert crashed["status"] == "error"
    assert "SIGSEGV" in crashed["reason"] and "2 attempts" in crashed["reason"]
    assert crashed["settings"]["probe_attempts"] == 2
    assert read_record(workdir / f"{PRETRAIN}/torch/baseline/w1/b1.json")["status"] == "ok"
    table = (workdir / "results/tables/table3_methods_b1.md").read_text()
    assert "zero2" in table and "error" in table
    report = snakemake(workdir, *config, "--report", "results/report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    assert (workdir / "results/report.html").is_file()


def kill_everything(process: subprocess.Popen) -> None:
    """A power cut: Snakemake, its jobs and their probes (in sessions of their own), at once."""
    tree = psutil.Process(process.pid)
    victims = [tree, *tree.children(recursive=True)]
    for victim in victims:
        try:
            victim.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    process.wait()


def test_after_a_hard_kill_unlock_and_resume_without_measuring_again(tmp_path):
    workdir, config = small_study(
        tmp_path,
        "    - frameworks: {torch: [baseline, recompute], deepspeed: [baseline]}\n"
        "      batches: [1]\n",
    )
    cells = [f"{PRETRAIN}/{cell}/w1/b1" for cell in
             ("torch/baseline", "torch/recompute", "deepspeed/baseline")]  # fmt: skip
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    command = [str(BIN / "snakemake"), "--cores", "2", *config]
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # kill once one cell is recorded and another has started
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            finished = [c for c in cells if (workdir / f"{c}.json").exists()]
            logs = [
                c for c in cells if (workdir / f"{c.replace('records', 'logs', 1)}.log").exists()
            ]
            if finished and len(logs) > len(finished):
                break
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no cell finished in time")
    finally:
        kill_everything(process)
    kept = {c: (workdir / f"{c}.json").read_bytes() for c in finished}

    refused = snakemake(workdir, "--cores", "2", *config)
    assert refused.returncode != 0
    assert "--unlock" in refused.stdout + refused.stderr  # Snakemake says what to do
    unlocked = snakemake(workdir, "--unlock", *config)
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    resumed = snakemake(workdir, "--cores", "2", *config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for cell in cells:
        assert read_record(workdir / f"{cell}.json")["status"] == "ok"
    for cell, content in kept.items():
        assert (workdir / f"{cell}.json").read_bytes() == content, f"{cell} measured again"
