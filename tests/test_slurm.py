"""The test config's whole DAG on a live single-node SLURM cluster (cluster/local-slurm.sh),
through the project's own profile: one job per cell with the resources its rule declares, a
job cancelled by the scheduler and retried, a run stopped half-way and resumed, and records and
tables of the same form as a local run's."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import BIN, REPO, copy_workflow

from llmdissect.records import read_record

LIVE_VARIABLE = "LLMDISSECT_LIVE_SLURM"
pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(
        os.environ.get(LIVE_VARIABLE) != "1",
        reason=f"the live SLURM tests start a private cluster: set {LIVE_VARIABLE}=1 (as root)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting SLURM's daemons needs root"),
]
CLUSTER = REPO / "cluster/local-slurm.sh"
# where SLURM, munge and MariaDB write by default: the private cluster leaves them as they were
SYSTEM_PLACES = [
    "/etc/slurm", "/etc/slurm-llnl", "/etc/munge", "/etc/mysql", "/var/lib/mysql",
    "/var/lib/munge", "/var/lib/slurm", "/var/spool/slurm", "/var/spool/slurmd",
    "/var/spool/slurmctld", "/var/log/slurm", "/var/log/munge", "/var/log/mysql", "/run/munge",
    "/run/mysqld", "/run/slurm", "/run/slurmctld.pid", "/run/slurmd.pid", "/run/slurmdbd.pid",
]  # fmt: skip
LIMIT_S = 900  # each run of the DAG; nothing a run starts may outlive it
# The profile asks for a GPU node's CPUs and memory; this node has 2 CPUs. Only sizes change.
NODE_SIZES = {
    "training_cell": {"cpus_per_task": 1, "mem_mb": 3000, "runtime": 20},
    "profile_cell": {"cpus_per_task": 1, "mem_mb": 3000, "runtime": 20},
    "ladder_cell": {"cpus_per_task": 1, "mem_mb": 3000, "runtime": 20},
    "serving_cell": {"cpus_per_task": 1, "mem_mb": 5000, "runtime": 20},
    "model_weights": {"mem_mb": 3000},
}
# Each process of a cell claims one of the node's two fake GPUs (the cells still run on the CPU).
GPU_CLAIMS = "platforms:\n  cpu:\n    device: cpu\n    gpus_per_process: 1\n"


def slurm_arguments() -> list[str]:
    sizes = [f"{rule}:{key}={value}" for rule, keys in NODE_SIZES.items()
             for key, value in keys.items()]  # fmt: skip
    return [
        "--workflow-profile", "profiles/slurm",
        "--configfile", "tests/config/test.yaml", "tests/config/slurm-gpus.yaml",
        "--jobs", "4",
        "--set-resources", *sizes,
        "--set-threads", "training_cell=1", "profile_cell=1", "ladder_cell=1", "serving_cell=1",
        "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-keep-successful-logs",
    ]  # fmt: skip


def cluster_command(verb: str, limit_s: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["timeout", "-s", "KILL", str(limit_s), str(CLUSTER), verb],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


# a database server the host runs keeps writing its own files: there, only names are compared
# (a new database, slurm_acct_db say, is a new folder)
NAMES_ONLY = ("/var/lib/mysql", "/var/log/mysql")


def system_state() -> dict[str, tuple]:
    """Every file and folder in SYSTEM_PLACES, with its size, mode and modification time."""
    state = {}
    for place in map(Path, SYSTEM_PLACES):
        for path in [place, *place.rglob("*")] if place.is_dir() else [place]:
            if not (path.exists() or path.is_symlink()):
                continue
            info = path.lstat()
            names_only = str(path).startswith(NAMES_ONLY)
            state[str(path)] = () if names_only else (info.st_size, info.st_mode, info.st_mtime_ns)
    return state


@pytest.fixture(scope="module")
def cluster():
    """A private cluster: its configs, keys, database and ports in its own folder; SLURM's
    commands find it through SLURM_CONF. Yields the system's state before it started."""
    installed = cluster_command("install", 900)  # packages: the only system change
    assert installed.returncode == 0, installed.stderr[-3000:]
    before = system_state()
    started = cluster_command("start")
    assert started.returncode == 0, started.stderr[-3000:]
    settings = dict(line.split("=", 1) for line in cluster_command("env").stdout.splitlines())
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)  # SLURM_CONF, and PATH with the cluster's own client commands
    try:
        yield before
    finally:
        cancel_our_jobs()
        cluster_command("stop")
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


RUN_IDS: set[str] = set()  # Snakemake's SLURM run ids: the job name of every job it submits


def cancel_our_jobs() -> None:
    """Cancels the jobs these tests' runs submitted, and no other."""
    for run_id in sorted(RUN_IDS):
        subprocess.run(["scancel", "--name", run_id], check=False)


def remember_run_ids(log_path: Path) -> None:
    for line in log_path.read_text().splitlines():
        if line.startswith("SLURM run ID: "):
            RUN_IDS.add(line.removeprefix("SLURM run ID: ").strip())


def start_run(workdir: Path) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    log = open(workdir / f"run{len(list(workdir.glob('run*.log')))}.log", "w")
    return subprocess.Popen(
        [str(BIN / "snakemake"), *slurm_arguments()],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    """Kills a run and everything it started, if it is still going."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def finished_records(workdir: Path) -> dict[str, tuple[float, str]]:
    out = {}
    for path in (workdir / "results/records").rglob("*.json"):
        out[str(path.relative_to(workdir))] = (path.stat().st_mtime, path.read_text())
    return out


def finished_outputs(log_text: str) -> set[str]:
    """Outputs of the jobs Snakemake reported finished ("Finished jobid: N")."""
    outputs, finished, current = {}, set(), []
    for line in log_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("output: "):
            current = [p.strip() for p in stripped.removeprefix("output: ").split(",")]
        elif stripped.startswith("jobid: ") and current:
            outputs[stripped.removeprefix("jobid: ")] = current
            current = []
        elif stripped.startswith("Finished jobid: "):
            finished.add(stripped.removeprefix("Finished jobid: ").split()[0])
    return {path for job in finished for path in outputs.get(job, [])}


def running_jobs(rule: str, part: str = "") -> list[tuple[str, str]]:
    """(job id, the plugin's comment: rule and wildcards) of running jobs of a rule."""
    listed = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True
    ).stdout
    jobs = [tuple(line.split(maxsplit=1)) for line in listed.splitlines()]
    return [(job, comment) for job, comment in jobs if comment.startswith(f"rule_{rule}_")
            and part in comment]  # fmt: skip


def wait_until(condition, what: str, deadline: float, process: subprocess.Popen):
    """Polls until `condition` holds; fails at `deadline` (time.monotonic) or if the run ends."""
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process.poll() is None, f"the run ended before {what}"
        time.sleep(1)
    raise AssertionError(f"no {what} before the run's time limit ({LIMIT_S} s)")


def accounting() -> dict[str, dict]:
    fields = ["JobID", "State", "ReqTRES", "Timelimit", "Partition", "NodeList", "Comment"]
    listed = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-S", "now-2hours", "-o", ",".join(fields)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in listed.splitlines()]
    return {row["JobID"]: row for row in rows}


def requested(row: dict) -> dict[str, str]:
    return dict(part.split("=", 1) for part in row["ReqTRES"].split(",") if "=" in part)


def cancel(job: tuple[str, str] | None) -> tuple[str, str] | None:
    """Cancels a running job; None if there is none or it ended before the cancel reached it."""
    if job is None or subprocess.run(["scancel", job[0]], check=False).returncode != 0:
        return None
    return job


def cancel_victims(cancelled: dict) -> dict | None:
    """One poll: cancels whichever victims are running now, in whatever order the scheduler
    starts them; returns `cancelled` once all three are. The retried one is a batch-1
    pre-training cell: quick, and it fits (the batch-4096 cell's record is "oom" on every try)."""
    running = running_jobs("training_cell")
    if "retried" not in cancelled:
        pick = [j for j in running if "_pretrain_" in j[1] and j[1].endswith("_1")]
        if victim := cancel(next(iter(pick), None)):
            cancelled["retried"] = victim
    if "doomed" not in cancelled:
        pick = [j for j in running if "_finetune_" in j[1]]
        if victim := cancel(next(iter(pick), None)):
            cancelled["doomed"] = victim
    elif "again" not in cancelled:
        doomed = cancelled["doomed"]
        pick = [j for j in running if j[1] == doomed[1] and j != doomed]
        if victim := cancel(next(iter(pick), None)):
            cancelled["again"] = victim
    return cancelled if len(cancelled) == 3 else None


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm"))
    (workdir / "tests/config/slurm-gpus.yaml").write_text(GPU_CLAIMS)
    # 1. A running measuring job is cancelled by the scheduler: the profile's retry reruns it.
    # 2. A fine-tuning cell (nothing depends on it) is cancelled on both attempts: it fails for
    #    good and must become an error record.
    # 3. Once a few cells are done, the run is stopped (as by Ctrl-C) half-way.
    first = start_run(workdir)
    deadline = time.monotonic() + LIMIT_S
    cancelled = {}
    try:
        cancelled = wait_until(
            lambda: cancel_victims(cancelled), "the three cancellations", deadline, first
        )
        retried, doomed, again = cancelled["retried"], cancelled["doomed"], cancelled["again"]
        log = workdir / "run0.log"
        wait_until(
            lambda: f"SLURM-job '{again[0]}' failed" in log.read_text(),
            "the retry's failure", deadline, first,
        )  # fmt: skip
        # the stop must not cancel the retry too: wait until Snakemake saw it finish
        wait_until(
            lambda: len(finished_records(workdir)) >= 8
            and cell_of(retried[1]) in finished_outputs(log.read_text()),
            "eight records and the retried cell's", deadline, first,
        )  # fmt: skip
        # one SIGINT, to Snakemake alone (as Ctrl-C once): a second one would interrupt its
        # cancelling of the running jobs and the failure bookkeeping after it
        first.send_signal(signal.SIGINT)
        first.wait(timeout=600)  # it cancels the running jobs first: slow on a busy machine
    finally:
        stop(first)
        remember_run_ids(workdir / "run0.log")
    cancel_our_jobs()
    # a record written just before the stop, whose job Snakemake had not yet seen finish, is
    # incomplete in its eyes and rightly measured again: compare only finished jobs' records
    done = finished_outputs((workdir / "run0.log").read_text())
    before = {path: v for path, v in finished_records(workdir).items() if path in done}
    # 3. The same command again finishes the rest and leaves what was done alone.
    second = start_run(workdir)
    try:
        assert second.wait(timeout=LIMIT_S) == 0, (workdir / "run1.log").read_text()[-5000:]
    finally:
        stop(second)
        remember_run_ids(workdir / "run1.log")
    return workdir, retried, doomed, before


def cell_of(comment: str) -> str:
    """The record path of a job's cell, from the plugin's comment (rule_..._wildcards_...)."""
    stage, platform, model, framework, method, world, batch = comment.split("_wildcards_")[1].split(
        "_"
    )
    return f"results/records/{stage}/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.json"


def test_a_cancelled_job_is_retried_and_its_cell_measured(slurm_run):
    workdir, (victim, comment), _, _ = slurm_run
    jobs = accounting()
    assert jobs[victim]["State"].startswith("CANCELLED")
    reruns = [j for j, row in jobs.items() if row["Comment"] == comment and int(j) > int(victim)]
    assert reruns and jobs[reruns[0]]["State"] == "COMPLETED"
    assert read_record(workdir / cell_of(comment))["status"] == "ok"


def test_a_cell_failing_on_every_attempt_is_recorded_with_its_reason(slurm_run):
    workdir, _, (_, comment), _ = slurm_run
    record = read_record(workdir / cell_of(comment))
    assert record["status"] == "error"
    assert "last attempt" in record["reason"] and "CANCELLED" in record["reason"]
    table = pd.read_csv(workdir / "results/tables/table9_finetune.csv", dtype=str)
    assert "error" in set(table.to_numpy().ravel())


def test_a_resumed_run_keeps_every_finished_record_and_runs_only_the_rest(slurm_run):
    workdir, _, _, before = slurm_run
    after = finished_records(workdir)
    assert set(before) < set(after)
    for path, (mtime, text) in before.items():
        assert after[path] == (mtime, text), path
    resumed = (workdir / "run1.log").read_text()
    for path in before:
        key = path.removeprefix("results/records/").removesuffix(".json")
        assert f"output: {path}" not in resumed, f"{key} ran again"


def test_every_cell_ran_as_its_own_job_with_its_rules_resources(slurm_run):
    workdir, _, (_, doomed), _ = slurm_run
    jobs = accounting()
    seen = set()
    for path in (workdir / "results/records").rglob("*.json"):
        if str(path.relative_to(workdir)) == cell_of(doomed):
            continue  # recorded by the workflow itself, after its jobs were cancelled
        record = read_record(path)
        slurm = record["environment"]["slurm"]
        job = jobs[slurm["SLURM_JOB_ID"]]
        assert slurm["SLURM_JOB_ID"] not in seen
        seen.add(slurm["SLURM_JOB_ID"])
        assert slurm["SLURM_JOB_PARTITION"] == job["Partition"] == "main"
        assert slurm["SLURMD_NODENAME"] == job["NodeList"]
        rule = job["Comment"].removeprefix("rule_").split("_wildcards_")[0]
        sizes = NODE_SIZES[rule]
        processes = int(record["cell"].get("world_size") or 1)
        tres = requested(job)
        assert tres["cpu"] == str(sizes["cpus_per_task"])
        assert tres["mem"] == f"{sizes['mem_mb']}M"
        assert tres.get("gres/gpu") == str(processes)
        assert job["Timelimit"] == f"00:{sizes['runtime']}:00"
        assert record["environment"]["visible_devices"] is not None


def test_records_and_tables_have_the_form_of_a_local_run(slurm_run, finished_run):
    workdir, _, (_, doomed), _ = slurm_run

    def records(run):
        found = {}
        for path in (run / "results/records").rglob("*.json"):
            record = read_record(path)
            found[record["key"]] = (record["status"], sorted(record["metrics"] or {}))
        return found

    local, on_slurm = records(finished_run), records(workdir)
    assert set(local) == set(on_slurm)
    failed = cell_of(doomed).removeprefix("results/records/").removesuffix(".json")
    for key, (status, metrics) in local.items():
        if key == failed:
            continue
        assert on_slurm[key][0] == status, key
        assert on_slurm[key][1] == metrics or status != "ok", key
    for table in sorted((finished_run / "results/tables").glob("*.csv")):
        header = table.read_text().partition("\n")[0]  # an empty table has no header at all
        theirs = (workdir / "results/tables" / table.name).read_text().partition("\n")[0]
        assert theirs == header, table.name


def test_nothing_is_left_running(slurm_run):
    # a job that just ended is listed as completing (CG) for a moment
    for _ in range(30):
        queued = subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout
        if not queued.strip():
            break
        time.sleep(1)
    assert not queued.strip()


def test_the_cluster_changes_nothing_outside_its_folder(slurm_run, cluster):
    # last in this module: it stops the cluster, then compares
    cancel_our_jobs()
    stopped = cluster_command("stop")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    before, after = cluster, system_state()
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, changed
