"""Largest batch that fits.

Two searches over probes that each say whether a batch fits:
- `max_batch_search` (no memory readings): double until a probe fails, then bisect between the
  last fit and it. It starts at a guess; when the guess does not fit it tries batch 1 next (a
  cell where nothing fits is then settled in two probes) and bisects between 1 and the guess.
- `predicted_batch_search` (probes that report their peak memory and what they could have
  used): memory grows about linearly with the batch for one method, so two fitting probes
  predict the largest batch; the prediction and its neighbour settle it when the line is right,
  and what is left is bisected. Four probes in the usual case: batch 1, the start, the
  prediction, its neighbour.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Probe:
    batch: int
    fits: bool
    memory_gb: float | None = None  # peak memory of a fitting probe, in the search's terms
    predicted: bool = False  # the batch came from the memory line

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class SearchResult:
    max_batch: int | None  # None: not even batch 1 (or the start batch) fits
    probes: list[Probe]  # in the order they ran
    hit_limit: bool  # the limit itself fitted, so the true maximum may be larger
    method: str = "bisect"  # or "predicted"

    @property
    def batches(self) -> list[tuple[int, bool]]:
        return [(p.batch, p.fits) for p in self.probes]


def check_bounds(start: int, limit: int) -> None:
    if not 1 <= start <= limit:
        raise ValueError(f"need 1 <= start <= limit, got start={start}, limit={limit}")


def max_batch_search(
    fits: Callable[[int], bool], start: int = 1, limit: int = 1024
) -> SearchResult:
    check_bounds(start, limit)
    probes: list[Probe] = []

    def probe(batch: int) -> bool:
        ok = fits(batch)
        probes.append(Probe(batch, ok))
        return ok

    good, bad = start, None
    if not probe(start):
        if start == 1 or not probe(1):
            return SearchResult(None, probes, hit_limit=False)
        good, bad = 1, start
    while bad is None:
        if good == limit:
            return SearchResult(good, probes, hit_limit=True)
        candidate = min(good * 2, limit)
        if probe(candidate):
            good = candidate
        else:
            bad = candidate
    while bad - good > 1:
        middle = (good + bad) // 2
        if probe(middle):
            good = middle
        else:
            bad = middle
    return SearchResult(good, probes, hit_limit=False)


# A probe that fits tells its peak memory and the memory it could have used (None: unknown).
MAX_LINES = 3  # predictions before the search stops trusting the line
Measure = Callable[[int], tuple[bool, float | None, float | None]]


def line_prediction(points: dict[int, float], capacity: float | None) -> int | None:
    """The largest batch whose memory stays within `capacity` on the line through the largest
    fitting batch and the largest one at most half of it (apart enough that the allocator's
    rounding does not tilt the line; near enough to follow a slow bend). None without two
    points, a capacity or a rising line."""
    if capacity is None or len(points) < 2:
        return None
    top = max(points)
    below = [b for b in points if b <= top // 2] or [b for b in points if b < top]
    low = max(below)
    slope = (points[top] - points[low]) / (top - low)
    if slope <= 0:
        return None
    return top + math.floor((capacity - points[top]) / slope + 1e-9)


def predicted_batch_search(measure: Measure, start: int = 2, limit: int = 1024) -> SearchResult:
    check_bounds(start, limit)
    probes: list[Probe] = []
    points: dict[int, float] = {}  # fitting batch -> its peak memory
    capacity: float | None = None
    good, bad = 0, None  # largest batch known to fit, smallest known not to

    def probe(batch: int, predicted: bool = False) -> bool:
        nonlocal good, bad, capacity
        ok, memory, can_use = measure(batch)
        probes.append(Probe(batch, ok, memory if ok else None, predicted))
        if ok:
            good = max(good, batch)
            if memory is not None:
                points[batch] = memory
            capacity = can_use if can_use is not None else capacity
        else:
            bad = batch if bad is None else min(bad, batch)
        return ok

    def result() -> SearchResult:
        return SearchResult(good or None, probes, hit_limit=good == limit, method="predicted")

    if not probe(1):
        return result()
    second = max(2, start)
    if second <= limit and not probe(second) and second > 2:
        probe((1 + second) // 2)  # a second fitting batch for the line, and half the gap
    confirm = None  # the neighbour that settles a batch the line predicted
    lines = 0
    points_seen = 0  # points the last prediction had: a line with no new point says nothing new
    while good < limit and (bad is None or bad - good > 1):
        upper = limit if bad is None else bad - 1
        tried = {p.batch for p in probes}
        fresh = lines < MAX_LINES and len(points) > points_seen
        predicted = line_prediction(points, capacity) if fresh else None
        from_line = False
        if confirm is not None and good < confirm <= upper:
            candidate = confirm
        elif predicted is not None and min(max(predicted, good + 1), upper) not in tried:
            # at or below the last fit, the line says the edge is there: its neighbour tells
            candidate, from_line, lines = min(max(predicted, good + 1), upper), True, lines + 1
            points_seen = len(points)
        elif bad is not None:
            candidate = (good + bad) // 2
        else:
            candidate = min(good * 2, upper)  # the line does not help: grow as bisect does
        ok = probe(candidate, from_line)
        confirm = (candidate + 1 if ok else candidate - 1) if from_line else None
    return result()
