"""The SLURM preflight: a job its partition can never run stops the run before any submission.
SLURM's commands are faked: captured text (SLURM 22.05 / 23.x formats) and scripts on PATH."""

import os
import subprocess
from types import SimpleNamespace

import pytest
from conftest import run_snakemake

from llmdissect import slurm_preflight
from llmdissect.slurm_preflight import (
    PartitionLimits,
    check_partitions_or_exit,
    gres_gpus,
    job_request,
    partition_limits,
    problem_lines,
    problems,
    query_partition,
    query_partitions,
    slurm_minutes,
)

# A small cluster: one node of 2 CPUs, 23000 MB and two GPUs (`scontrol show partition main
# --oneliner`, SLURM 23.02; `sinfo -h -e -p main -o "%c %m %G %D"`).
SMALL_PARTITION = (
    "PartitionName=main AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL "
    "Default=YES QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 "
    "Hidden=NO MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 LLN=NO "
    "MaxCPUsPerNode=UNLIMITED MaxCPUsPerSocket=UNLIMITED Nodes=node1 PriorityJobFactor=1 "
    "PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF "
    "State=UP TotalCPUs=2 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) "
    "DefMemPerCPU=1000 MaxMemPerNode=UNLIMITED "
    "TRES=cpu=2,mem=23000M,node=1,billing=2,gres/gpu=2\n"
)
SMALL_NODES = "2 23000 gpu:2 1\n"
# A GPU partition of four A800 nodes, two sizes of memory; a job may use two nodes for two days
# (SLURM 22.05).
A800_PARTITION = (
    "PartitionName=a800 AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL "
    "Default=NO QoS=N/A DefaultTime=01:00:00 DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 "
    "Hidden=NO MaxNodes=2 MaxTime=2-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED "
    "Nodes=gpu[01-04] PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO "
    "OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=512 TotalNodes=4 "
    "SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED "
    "MaxMemPerNode=UNLIMITED TRES=cpu=512,mem=2576000M,node=4,billing=512,gres/gpu=32\n"
)
A800_NODES = "128 515000 gpu:a800:8(S:0-1) 3\n128 1031000 gpu:a800:8(S:0-1),shard:64(S:0-1) 1\n"
MISSING = "slurm_load_partitions: Invalid partition name specified\nPartition gpu not found\n"

SMALL = partition_limits("main", SMALL_PARTITION, SMALL_NODES)
A800 = partition_limits("a800", A800_PARTITION, A800_NODES)


def request(rule="training_cell", partition="main", **asked) -> dict:
    sizes = {"cpus_per_task": 1, "mem_mb": 3000, "gpus": 0, "runtime": 20, "nodes": 1}
    return {"rule": rule, "partition": partition, "gpu_model": "", **sizes, **asked}


def test_partition_and_node_texts_are_parsed():
    assert SMALL == PartitionLimits(
        name="main", cpus=2, mem_mb=23000, gpus={"": 2}, max_time_min=None, nodes=1
    )
    assert A800 == PartitionLimits(
        name="a800", cpus=128, mem_mb=1031000, gpus={"a800": 8, "": 8}, max_time_min=2880, nodes=2
    )


def test_partition_caps_per_node_lower_the_limits():
    capped = SMALL_PARTITION.replace("MaxCPUsPerNode=UNLIMITED", "MaxCPUsPerNode=1")
    capped = capped.replace("MaxMemPerNode=UNLIMITED", "MaxMemPerNode=8000")
    limits = partition_limits("main", capped, SMALL_NODES)
    assert (limits.cpus, limits.mem_mb) == (1, 8000)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("UNLIMITED", None),
        ("INFINITE", None),
        ("04:00:00", 240),
        ("2-00:00:00", 2880),
        ("1-12:30:00", 2190),
        ("00:30:30", 31),  # a started minute counts
        ("30:00", 30),
        ("45", 45),
    ],
)
def test_slurm_times_in_minutes(text, minutes):
    assert slurm_minutes(text) == minutes


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [
        ("(null)", {}),
        ("gpu:2", {"": 2}),
        ("gpu:2(S:0)", {"": 2}),
        ("gpu:a800:8(S:0-1),shard:64(S:0-1)", {"a800": 8, "": 8}),
        ("gpu:a100:4,gpu:v100:2", {"a100": 4, "v100": 2, "": 6}),
        ("gpu:tesla", {"tesla": 1, "": 1}),
    ],
)
def test_gpus_of_a_nodes_gres(gres, gpus):
    assert gres_gpus(gres) == gpus


def test_a_request_larger_than_any_node_is_named_with_rule_request_and_limit():
    too_large = request(cpus_per_task=8, mem_mb=64000, runtime=240)
    assert problem_lines([too_large], {"main": SMALL}) == [
        "llmdissect: rule training_cell asks for 8 CPUs per task and 64000 MB; the largest node"
        " of partition main has 2 CPUs and 23000 MB (set-resources in profiles/slurm/config.yaml)"
    ]


def test_requests_that_fit_pass():
    assert problems(request(gpus=2), SMALL) == []
    # 16 GPUs over two nodes: eight per node
    assert problems(request(partition="a800", cpus_per_task=64, mem_mb=900000, gpus=16,
                            gpu_model="a800", runtime=2880, nodes=2), A800) == []  # fmt: skip
    assert problem_lines([request(), request(rule="serving_cell")], {"main": SMALL}) == []


def test_gpus_time_and_nodes_beyond_the_partition_are_named():
    three_gpus = problems(request(gpus=3), SMALL)
    assert three_gpus == [
        "asks for 3 GPUs per node; the largest node of partition main has 2 (one per process;"
        " gpus_per_node under platforms spreads a cell over nodes)"
    ]
    found = problems(
        request(partition="a800", gpus=32, gpu_model="a800", runtime=3000, nodes=4), A800
    )
    assert len(found) == 2
    assert found[0].startswith("asks for 3000 minutes; partition a800 allows at most 2880")
    assert found[1].startswith("asks for 4 nodes; a job of partition a800 can have at most 2")
    other_model = problems(request(partition="a800", gpus=1, gpu_model="h100"), A800)
    assert other_model[0].startswith("asks for 1 h100 GPUs per node;")


def test_several_jobs_of_a_rule_give_one_line_per_problem():
    jobs = [request(cpus_per_task=8, mem_mb=64000) for _ in range(5)]
    jobs += [request(rule="model_weights", mem_mb=64000), request(rule="serving_cell")]
    lines = problem_lines(jobs, {"main": SMALL})
    assert len(lines) == 2
    assert lines[0].startswith("llmdissect: rule training_cell (5 jobs) asks for 8 CPUs per task")
    assert lines[1].startswith("llmdissect: rule model_weights asks for 64000 MB; the largest")


def fake_slurm(outputs: dict, calls: list | None = None):
    """subprocess.run answering scontrol and sinfo from captured text (by command name)."""

    def run(command, **kwargs):
        if calls is not None:
            calls.append((command, kwargs))
        returncode, stdout, stderr = outputs[command[0]]
        if kwargs.get("check") and returncode:
            raise subprocess.CalledProcessError(returncode, command, stdout, stderr)
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)

    return run


def test_the_partition_is_asked_with_a_time_limit():
    calls = []
    run = fake_slurm({"scontrol": (0, SMALL_PARTITION, ""), "sinfo": (0, SMALL_NODES, "")}, calls)
    assert query_partition("main", run) == SMALL
    assert [command[0] for command, _ in calls] == ["scontrol", "sinfo"]
    assert all(kwargs["timeout"] for _, kwargs in calls)


def test_a_partition_slurm_does_not_know_is_a_problem():
    run = fake_slurm({"scontrol": (1, "", MISSING), "sinfo": (0, "", "")})
    limits = query_partitions({"gpu"}, run)
    assert limits == {"gpu": None}
    lines = problem_lines([request(partition="gpu")], limits)
    assert lines == [
        "llmdissect: rule training_cell asks for partition gpu, which the cluster does not have"
        " (slurm_partition in profiles/slurm/config.yaml or under platforms)"
    ]


def test_a_partition_slurm_cannot_be_asked_about_is_left_unchecked(capsys):
    def timing_out(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    limits = query_partitions({"main"}, timing_out)
    assert limits == {}
    assert "partition main not checked" in capsys.readouterr().err
    assert problem_lines([request(cpus_per_task=8)], limits) == []
    # sizes sinfo merged ("at least 32") say nothing of the largest node: not checked either
    merged = fake_slurm(
        {"scontrol": (0, SMALL_PARTITION, ""), "sinfo": (0, "32+ 23000 (null) 2", "")}
    )
    assert query_partitions({"main"}, merged) == {}


def fake_job(rule="training_cell", threads=8, local=False, **resources):
    return SimpleNamespace(
        rule=SimpleNamespace(name=rule), threads=threads, is_local=local, resources=resources
    )


def test_a_jobs_request_is_what_the_slurm_plugin_submits():
    job = fake_job(slurm_partition="main", cpus_per_task=8, mem_mb=64000, runtime=240, gpu=2)
    assert job_request(job) == request(cpus_per_task=8, mem_mb=64000, runtime=240, gpus=2)
    # no cpus_per_task: the job's threads; mem_mb_per_cpu: times its CPUs
    job = fake_job(threads=4, slurm_partition="main", mem_mb_per_cpu=1000, nodes=2)
    assert job_request(job) == request(cpus_per_task=4, mem_mb=4000, nodes=2, runtime=None)
    # cpus_per_task < 0: the plugin asks for no CPUs; no partition: the plugin picks one
    assert job_request(fake_job(slurm_partition="main", cpus_per_task=-1))["cpus_per_task"] is None
    assert job_request(fake_job(mem_mb=64000)) is None


def fake_workflow(executor: str | None, dryrun=False, jobs=()):
    plugin = None if executor is None else SimpleNamespace(name=executor)
    dag = SimpleNamespace(needrun_jobs=lambda: list(jobs))
    return SimpleNamespace(executor_plugin=plugin, dryrun=dryrun, dag=dag)


def refuse_to_run(*args, **kwargs):
    raise AssertionError("SLURM was asked")


@pytest.mark.parametrize(
    ("executor", "dryrun"), [(None, False), ("local", False), ("dryrun", True), ("slurm", True)]
)
def test_the_hook_asks_nothing_off_the_slurm_executor(monkeypatch, executor, dryrun):
    monkeypatch.setattr(slurm_preflight.subprocess, "run", refuse_to_run)
    monkeypatch.setattr(slurm_preflight.shutil, "which", lambda name: f"/usr/bin/{name}")
    too_large = fake_job(slurm_partition="main", cpus_per_task=8, mem_mb=64000)
    check_partitions_or_exit(fake_workflow(executor, dryrun, [too_large]))


def test_the_hook_skips_with_a_note_where_slurm_is_not_installed(monkeypatch, capsys):
    monkeypatch.setattr(slurm_preflight.subprocess, "run", refuse_to_run)
    monkeypatch.setattr(slurm_preflight.shutil, "which", lambda name: None)
    check_partitions_or_exit(fake_workflow("slurm", jobs=[fake_job(slurm_partition="main")]))
    assert "not checked" in capsys.readouterr().err


def test_the_hook_stops_the_run_with_one_line_per_problem(monkeypatch):
    outputs = {"scontrol": (0, SMALL_PARTITION, ""), "sinfo": (0, SMALL_NODES, "")}
    monkeypatch.setattr(slurm_preflight.subprocess, "run", fake_slurm(outputs))
    monkeypatch.setattr(slurm_preflight.shutil, "which", lambda name: f"/usr/bin/{name}")
    cells = [fake_job(slurm_partition="main", cpus_per_task=8, mem_mb=64000) for _ in range(3)]
    local = fake_job(rule="summary", local=True, slurm_partition="main", mem_mb=64000)
    with pytest.raises(SystemExit) as stopped:
        check_partitions_or_exit(fake_workflow("slurm", jobs=[*cells, local]))
    lines = str(stopped.value.code).splitlines()
    assert lines[0].startswith("llmdissect: rule training_cell (3 jobs) asks for 8 CPUs")
    assert lines[1] == "llmdissect: stopped before submitting any job (SLURM would hold them)"
    fitting = fake_job(slurm_partition="main", cpus_per_task=2, mem_mb=20000)
    check_partitions_or_exit(fake_workflow("slurm", jobs=[fitting]))


FAKE_COMMAND = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
case "$(basename "$0") $1 $2" in
  "scontrol show partition") cat "{folder}/partition.txt" ;;
  "sinfo "*) cat "{folder}/nodes.txt" ;;
  "sbatch "*) exit 1 ;;
esac
"""


def fake_slurm_commands(folder) -> tuple:
    """SLURM's commands on PATH (before any real ones), answering as the small cluster does;
    each call is logged."""
    folder.mkdir()
    (folder / "partition.txt").write_text(SMALL_PARTITION)
    (folder / "nodes.txt").write_text(SMALL_NODES)
    log = folder / "calls.log"
    log.touch()
    for name in ("scontrol", "sinfo", "sbatch", "squeue", "sacct", "sacctmgr", "sshare", "scancel"):
        script = folder / name
        script.write_text(FAKE_COMMAND.format(log=log, folder=folder))
        script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}", log


PROFILE_RUN = [
    "results/records/pretrain/cpu/micro/torch/baseline/w1/b1.json",
    "--workflow-profile", "profiles/slurm", "--configfile", "tests/config/test.yaml",
]  # fmt: skip


@pytest.mark.workflow
def test_a_dry_run_with_the_slurm_profile_checks_no_partition(workflow_copy, tmp_path, monkeypatch):
    path, calls = fake_slurm_commands(tmp_path / "bin")
    monkeypatch.setenv("PATH", path)
    done = run_snakemake(workflow_copy, "-n", *PROFILE_RUN, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # (the slurm plugin itself reads `scontrol show config`)
    assert "partition" not in calls.read_text() and "sinfo" not in calls.read_text()


@pytest.mark.workflow
def test_a_run_whose_jobs_can_never_start_stops_before_submitting(
    workflow_copy, tmp_path, monkeypatch
):
    path, calls = fake_slurm_commands(tmp_path / "bin")
    monkeypatch.setenv("PATH", path)
    done = run_snakemake(workflow_copy, *PROFILE_RUN, timeout=300)
    assert done.returncode != 0
    assert (
        "llmdissect: rule training_cell asks for 8 CPUs per task and 64000 MB; the largest node"
        " of partition main has 2 CPUs and 23000 MB" in done.stderr
    ), done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    asked = calls.read_text().splitlines()
    assert "scontrol show partition main --oneliner" in asked
    assert not [line for line in asked if line.startswith("sbatch")]
    assert not (workflow_copy / "results/data").exists()  # not even a local job ran
