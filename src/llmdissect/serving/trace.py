"""What the load generator keeps of each request: raw timestamps only, so every metric can be
recomputed later under any definition (one JSON line per request)."""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

# why a request did not complete (besides "http <status>", e.g. "http 500")
TRUNCATED = "truncated"  # the stream ended early: no [DONE] or finish_reason, or too few tokens
TIMEOUT = "timeout"  # past the total limit, or no chunk for the idle limit
CONNECTION = "connection"  # refused, reset or dropped before any response
ENGINE_ERROR = "engine error"  # the stream carried an error event or an unreadable chunk
OTHER = "other"  # anything else the client met
UNKNOWN = "unknown"  # a failed request of a trace file written before kinds were kept


@dataclass
class RequestTrace:
    """One request. Times are seconds on the client's monotonic clock, from the run's start."""

    index: int
    prompt_tokens: int
    expected_tokens: int  # the max_tokens asked for
    sent: float = 0.0
    finished: float | None = None
    # (arrival time, tokens in that chunk) for every chunk that carried output tokens
    chunks: list[tuple[float, int]] = field(default_factory=list)
    # the engine's own count (usage), when it reports one
    reported_tokens: int | None = None
    error: str | None = None  # what went wrong, in detail
    failure: str | None = None  # its kind (above); a failed request keeps its end in `finished`
    level: float | None = None  # in a load sweep, the rate or concurrency it was sent at

    @property
    def ok(self) -> bool:
        """Completed: no failure and no error (older files kept only the error)."""
        failed = self.failure is not None or self.error is not None
        return not failed and self.finished is not None and bool(self.chunks)

    @property
    def failure_kind(self) -> str | None:
        if self.ok:
            return None
        return self.failure or UNKNOWN

    @property
    def output_tokens(self) -> int:
        """The engine's count where it gives one, else the sum over chunks."""
        if self.reported_tokens is not None:
            return self.reported_tokens
        return sum(tokens for _, tokens in self.chunks)


def write_traces(path: Path, traces: list[RequestTrace]) -> None:
    """Times kept to the microsecond (half the bytes of full floats); .gz paths are gzipped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt") as f:
        for trace in traces:
            f.write(json.dumps(_to_microseconds(asdict(trace)), separators=(",", ":")) + "\n")


def _to_microseconds(row: dict) -> dict:
    def us(t):
        return None if t is None else round(t, 6)

    row.update(sent=us(row["sent"]), finished=us(row["finished"]))
    row["chunks"] = [(us(t), tokens) for t, tokens in row["chunks"]]
    return row


def read_traces(path: Path) -> list[RequestTrace]:
    """A trace file, plain or gzipped (.gz: how committed reference traces stay small)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        lines = f.read().splitlines()
    traces = []
    for line in lines:
        row = json.loads(line)
        row["chunks"] = [tuple(chunk) for chunk in row["chunks"]]
        traces.append(RequestTrace(**row))
    return traces


def trace_path_of(record_path: Path) -> Path | None:
    """The traces written beside a serving record, plain or gzipped, if there are any."""
    stem = Path(record_path).with_suffix("")
    for suffix in (".trace.jsonl", ".trace.jsonl.gz"):
        candidate = stem.with_name(stem.name + suffix)
        if candidate.exists():
            return candidate
    return None
