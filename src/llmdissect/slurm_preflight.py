"""Before any SLURM job is submitted: can each job's request ever start on its partition?

A job asking for more than the partition can give (more CPUs or memory than its largest node,
more GPUs than a node holds, more time than MaxTime, more nodes than it has) is accepted by
sbatch and then stays pending (reason PartitionConfig) for good, and Snakemake waits with it.
The workflow's onstart hook calls `check_partitions_or_exit(workflow)`, which stops the run
with one line per problem instead.

Requests are dicts (rule, partition, cpus_per_task, mem_mb, gpus, gpu_model, runtime in
minutes, nodes); partitions are read from `scontrol show partition <name> --oneliner` and
`sinfo -h -e -p <name> -o "%c %m %G %D"`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass

QUERY_TIMEOUT_S = 20
SINFO_FORMAT = "%c %m %G %D"  # CPUs, memory (MB), generic resources, node count
SIZE_HINT = "set-resources in profiles/slurm/config.yaml"
GPU_HINT = "one per process; gpus_per_node under platforms spreads a cell over nodes"
PARTITION_HINT = "slurm_partition in profiles/slurm/config.yaml or under platforms"
UNLIMITED = {"UNLIMITED", "INFINITE", "NONE"}


@dataclass(frozen=True)
class PartitionLimits:
    """The most one job can get from a partition."""

    name: str
    cpus: int  # on one node (its largest, or MaxCPUsPerNode if fewer)
    mem_mb: int  # on one node (its largest, or MaxMemPerNode if less)
    gpus: dict[str, int]  # on one node, per GPU model; "" counts every model
    max_time_min: int | None  # None: no limit
    nodes: int  # the partition's nodes, or MaxNodes if fewer


# Parsing what scontrol and sinfo print


def parse_fields(text: str) -> dict[str, str]:
    """Key=Value fields of one `scontrol show ... --oneliner` line (a value may hold '=')."""
    return dict(token.split("=", 1) for token in text.split() if "=" in token)


def limit_number(value: str | None) -> int | None:
    """A numeric limit; None where SLURM says there is none (UNLIMITED)."""
    if value is None or value.upper() in UNLIMITED:
        return None
    return int(value)


def slurm_minutes(value: str | None) -> int | None:
    """A SLURM time ([days-]hours:minutes:seconds, minutes:seconds or minutes) in whole
    minutes, rounded up; None for UNLIMITED."""
    if value is None or value.upper() in UNLIMITED:
        return None
    days, _, clock = value.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    hours, minutes, seconds = ([0, 0, 0] + parts)[-3:] if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 24 * 60 + hours * 60 + minutes + (1 if seconds else 0)


def gres_gpus(gres: str) -> dict[str, int]:
    """GPUs per model in a node's gres ("gpu:a800:8(S:0-1),shard:16" -> {"a800": 8, "": 8})."""
    gpus: Counter[str] = Counter()
    for item in re.sub(r"\([^)]*\)", "", gres).split(","):
        name, *rest = item.strip().split(":")
        if name != "gpu":
            continue
        if len(rest) == 2:  # gpu:<model>:<count>
            model, count = rest
        elif rest and not rest[0].isdigit():  # gpu:<model>
            model, count = rest[0], "1"
        else:  # gpu:<count> or gpu
            model, count = "", rest[0] if rest else "1"
        gpus[model] += int(count)
        if model:
            gpus[""] += int(count)
    return dict(gpus)


@dataclass(frozen=True)
class NodeKind:
    """One line of sinfo: `count` nodes of one configuration."""

    cpus: int
    mem_mb: int
    gpus: dict[str, int]
    count: int


def parse_sinfo(text: str) -> list[NodeKind]:
    kinds = []
    for line in text.splitlines():
        if not line.strip():
            continue
        # sinfo -e lists each size apart; a "32+" (sizes merged) fails int(): not checked then
        cpus, mem_mb, gres, count = line.split()
        kinds.append(NodeKind(int(cpus), int(mem_mb), gres_gpus(gres), int(count)))
    return kinds


def partition_limits(name: str, scontrol_text: str, sinfo_text: str) -> PartitionLimits:
    fields = parse_fields(scontrol_text)
    kinds = parse_sinfo(sinfo_text)
    models = {model for kind in kinds for model in kind.gpus}
    node_count = int(fields.get("TotalNodes", sum(kind.count for kind in kinds)))
    return PartitionLimits(
        name=name,
        cpus=capped(max((k.cpus for k in kinds), default=0), fields.get("MaxCPUsPerNode")),
        mem_mb=capped(max((k.mem_mb for k in kinds), default=0), fields.get("MaxMemPerNode")),
        gpus={m: max(k.gpus.get(m, 0) for k in kinds) for m in models},
        max_time_min=slurm_minutes(fields.get("MaxTime")),
        nodes=capped(node_count, fields.get("MaxNodes")),
    )


def capped(value: int, limit: str | None) -> int:
    cap = limit_number(limit)
    return value if cap is None else min(value, cap)


# Comparing requests with limits


def problems(request: dict, limits: PartitionLimits | None) -> list[str]:
    """What in one job's request its partition can never give, as phrases to follow
    "rule <name> "; empty when it fits. `limits` is None for a partition SLURM does not know."""
    if limits is None:
        partition = request["partition"]
        return [
            f"asks for partition {partition}, which the cluster does not have ({PARTITION_HINT})"
        ]
    found = [size_problem(request, limits), gpu_problem(request, limits)]
    found += [time_problem(request, limits), node_problem(request, limits)]
    return [problem for problem in found if problem]


def size_problem(request: dict, limits: PartitionLimits) -> str | None:
    asked, largest = [], []
    cpus, mem_mb = request.get("cpus_per_task"), request.get("mem_mb")
    if cpus is not None and cpus > limits.cpus:
        asked.append(f"{cpus} CPUs per task")
        largest.append(f"{limits.cpus} CPUs")
    if mem_mb is not None and mem_mb > limits.mem_mb:
        asked.append(f"{mem_mb} MB")
        largest.append(f"{limits.mem_mb} MB")
    if not asked:
        return None
    return (
        f"asks for {' and '.join(asked)}; the largest node of partition {limits.name} has "
        f"{' and '.join(largest)} ({SIZE_HINT})"
    )


def gpu_problem(request: dict, limits: PartitionLimits) -> str | None:
    nodes = request.get("nodes") or 1
    per_node = -(-(request.get("gpus") or 0) // nodes)  # sbatch's --gpus is the whole job's
    model = request.get("gpu_model") or ""
    most = limits.gpus.get(model, 0)
    if per_node <= most:
        return None
    kind = f"{model} GPUs" if model else "GPUs"
    return (
        f"asks for {per_node} {kind} per node; the largest node of partition {limits.name} "
        f"has {most} ({GPU_HINT})"
    )


def time_problem(request: dict, limits: PartitionLimits) -> str | None:
    runtime, most = request.get("runtime"), limits.max_time_min
    if runtime is None or most is None or runtime <= most:
        return None
    return (
        f"asks for {runtime} minutes; partition {limits.name} allows at most {most} "
        f"(runtime, {SIZE_HINT})"
    )


def node_problem(request: dict, limits: PartitionLimits) -> str | None:
    nodes = request.get("nodes") or 1
    if nodes <= limits.nodes:
        return None
    return (
        f"asks for {nodes} nodes; a job of partition {limits.name} can have at most "
        f"{limits.nodes} ({GPU_HINT})"
    )


def problem_lines(requests: list[dict], limits: dict[str, PartitionLimits | None]) -> list[str]:
    """One line per distinct problem of a rule, with the number of its jobs that have it.
    Requests whose partition is not in `limits` (not checked) are left out."""
    found: Counter[tuple[str, str]] = Counter()
    for request in requests:
        if request["partition"] not in limits:
            continue
        for problem in problems(request, limits[request["partition"]]):
            found[request["rule"], problem] += 1
    return [
        f"llmdissect: rule {rule}{f' ({jobs} jobs)' if jobs > 1 else ''} {problem}"
        for (rule, problem), jobs in found.items()
    ]


# Asking SLURM, and the hook


def query_partition(name: str, run=None) -> PartitionLimits | None:
    """The partition's limits; None if SLURM does not know it. Raises OSError or
    subprocess.SubprocessError if SLURM cannot be asked. `run`: subprocess.run or a fake."""
    run = run or subprocess.run
    shown = run(
        ["scontrol", "show", "partition", name, "--oneliner"],
        capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=False,
    )  # fmt: skip
    if shown.returncode != 0:
        if "not found" in shown.stdout + shown.stderr:
            return None
        raise subprocess.SubprocessError(shown.stderr.strip() or f"exit code {shown.returncode}")
    nodes = run(
        ["sinfo", "-h", "-e", "-p", name, "-o", SINFO_FORMAT],
        capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=True,
    )  # fmt: skip
    return partition_limits(name, shown.stdout, nodes.stdout)


def job_request(job) -> dict | None:
    """What a Snakemake job asks SLURM for, as the slurm executor plugin (2.8) puts it into
    sbatch; None if it names no partition (the plugin then picks the cluster's default)."""
    resources = job.resources
    partition = resources.get("slurm_partition")
    if not partition:
        return None
    cpus = whole(resources.get("cpus_per_task"))
    if cpus is None:
        cpus = whole(job.threads)
    elif cpus < 0:
        cpus = None  # the plugin then asks for no CPUs at all
    else:
        cpus = max(1, cpus)
    mem_mb = whole(resources.get("mem_mb"))
    per_cpu = whole(resources.get("mem_mb_per_cpu"))
    if per_cpu:
        mem_mb = per_cpu * (cpus or 1)
    gpus = next((whole(resources.get(k)) for k in ("gpus", "gpu", "nvidia_gpu")
                 if resources.get(k) is not None), None)  # fmt: skip
    return {
        "rule": job.rule.name,
        "partition": str(partition),
        "cpus_per_task": cpus,
        "mem_mb": mem_mb,
        "gpus": gpus or 0,
        "gpu_model": str(resources.get("gpu_model") or ""),
        "runtime": whole(resources.get("runtime")),
        "nodes": whole(resources.get("nodes")) or 1,
    }


def whole(value) -> int | None:
    """An integer resource; None where it is unset or not known yet (not checked then)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def note(text: str) -> None:
    print(f"llmdissect: {text}", file=sys.stderr)


def check_partitions_or_exit(workflow) -> None:
    """Stop the run, before any job is submitted, if a job's request can never start on its
    partition. Only on the slurm executor and where scontrol and sinfo are on PATH."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm" or workflow.dryrun:
        return
    if not (shutil.which("scontrol") and shutil.which("sinfo")):
        note("scontrol or sinfo not on PATH: jobs' requests are not checked against partitions")
        return
    jobs = [job for job in workflow.dag.needrun_jobs() if not job.is_local]
    requests = [r for r in map(job_request, jobs) if r is not None]
    lines = problem_lines(requests, query_partitions({r["partition"] for r in requests}))
    if lines:
        lines.append("llmdissect: stopped before submitting any job (SLURM would hold them)")
        sys.exit("\n".join(lines))


def query_partitions(names: set[str], run=None) -> dict[str, PartitionLimits | None]:
    """Limits of each partition SLURM could be asked about (a note for each other one)."""
    limits = {}
    for name in sorted(names):
        try:
            limits[name] = query_partition(name, run)
        except (OSError, subprocess.SubprocessError, ValueError) as error:
            note(f"partition {name} not checked: SLURM could not be asked ({error})")
    return limits
