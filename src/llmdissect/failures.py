"""A measuring job that failed for good (killed by the scheduler on its last attempt, a node
lost, a crash outside the cell's own error handling) becomes a recorded cell with the reason,
so the tables show "error" where it would otherwise have a hole.

Snakemake's log names each failed job ("Error in rule ...", its message, its outputs) and says
when a job is tried again ("Trying to restart job N."); a failure with no restart after it was
the last attempt. A run stopped by the user is not a failure: its unfinished cells stay
unrecorded and run when the command is given again.
"""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

from .environment import collect_manifest
from .records import make_record, now_iso, write_json_atomic

ERROR_LINE = re.compile(r"^Error in rule (\S+):$")
RESTART_LINE = re.compile(r"^Trying to restart job (\d+)\.$")
# printed once Snakemake is interrupted (Ctrl-C, a time limit's SIGINT) or told to stop (SIGTERM:
# `timeout`, kill, a batch system ending the job that runs Snakemake): jobs that fail after it
# were stopped on purpose, and must run again next time rather than be recorded as errors
USER_STOPS = (
    "Terminating processes on user request",
    "Will exit after finishing currently running jobs",
)


def final_failures(log_text: str) -> dict[str, tuple[str, list[str]]]:
    """Output path -> (the failure's message, all outputs of that job), for every job whose
    last attempt failed."""
    lines = log_text.splitlines()
    stopped = next(
        (i for i, line in enumerate(lines) if any(stop in line for stop in USER_STOPS)),
        len(lines),
    )
    failures = []  # (line index, job id, outputs, message)
    for index, line in enumerate(lines):
        match = ERROR_LINE.match(line.strip())
        if not match or index > stopped:
            continue
        fields = {}
        for detail in lines[index + 1 :]:
            if not detail.startswith("    "):
                break
            name, _, value = detail.strip().partition(": ")
            fields.setdefault(name, value)
        message = fields.get("message") or "None"
        if message == "None":
            message = f"rule {match.group(1)} failed (see its log: {fields.get('log', '-')})"
        outputs = [p.strip() for p in fields.get("output", "").split(",") if p.strip()]
        failures.append((index, fields.get("jobid"), outputs, message))
    restarts = [
        (index, m.group(1))
        for index, line in enumerate(lines)
        if (m := RESTART_LINE.match(line.strip()))
    ]
    final = {}
    for index, job, outputs, message in failures:
        if any(after > index and restarted == job for after, restarted in restarts):
            continue
        for output in outputs:
            final[output] = (message, outputs)
    return final


def record_failed_cells(log_paths: list[str], cells_by_record: dict[str, object]) -> list[str]:
    """Writes an error record for each measured cell whose job failed for good and left no
    record (and empty files for the job's other outputs, so the cell counts as done);
    returns the records written."""
    text = "\n".join(Path(p).read_text() for p in log_paths if Path(p).is_file())
    written = []
    for output, (message, outputs) in final_failures(text).items():
        cell = cells_by_record.get(output)
        if cell is None or Path(output).exists():
            continue
        environment = collect_manifest()
        # this machine ran Snakemake, not the cell: tables must not take its hardware for the cell's
        environment["recorded_by"] = "the workflow, after the cell's job failed"
        record = make_record(
            cell.key,
            cell.as_dict(),
            "error",
            metrics={},
            settings={},
            environment=environment,
            started_at=now_iso(),
            started_monotonic=time.monotonic(),
            reason=f"the job failed on its last attempt: {message}",
        )
        write_json_atomic(Path(output), record)
        for sibling in map(Path, outputs):
            if sibling != Path(output) and not sibling.exists():
                sibling.parent.mkdir(parents=True, exist_ok=True)
                if sibling.suffix == ".gz":
                    gzip.open(sibling, "wb").close()  # a valid, empty trace
                else:
                    sibling.touch()
        written.append(output)
    return written
