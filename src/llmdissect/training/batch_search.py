"""Largest batch that fits: double until a probe fails, then bisect between the last fit and it.

The search starts at a guess: when the guess does not fit, it tries batch 1 next (a cell where
nothing fits is then settled in two probes) and bisects between 1 and the guess; a good guess
saves probes and a bad one costs a few."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class SearchResult:
    max_batch: int | None  # None: not even the start batch fits
    probes: list[tuple[int, bool]]  # (batch, fits) in the order they ran
    hit_limit: bool  # the limit itself fitted, so the true maximum may be larger


def max_batch_search(
    fits: Callable[[int], bool], start: int = 1, limit: int = 1024
) -> SearchResult:
    if not 1 <= start <= limit:
        raise ValueError(f"need 1 <= start <= limit, got start={start}, limit={limit}")
    probes: list[tuple[int, bool]] = []

    def probe(batch: int) -> bool:
        ok = fits(batch)
        probes.append((batch, ok))
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
