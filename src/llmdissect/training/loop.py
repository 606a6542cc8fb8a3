"""The one timed step loop: warm-up steps first, then measured steps, device synchronized."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..energy import EnergyWindow
from ..hardware import synchronize
from .frameworks.base import Trainer
from .memory import device_used_gb, reset_peaks


@dataclass
class StepRecord:
    index: int
    warmup: bool
    time_ms: float
    tokens: int  # real tokens, padding excluded
    padded_tokens: int  # batch x padded length: what the device computed on
    loss: float
    graphs: int | None = None  # graphs compiled so far (torch.compile); None when not compiled


def padded_batches(
    samples: list[list[int]], batch_size: int, rank: int = 0, world_size: int = 1, pad_id: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]:
    """Endless batches in sample order (cycling), each rank its own share; labels ignore padding."""
    position = rank * batch_size
    while True:
        rows = [samples[(position + i) % len(samples)] for i in range(batch_size)]
        position = (position + batch_size * world_size) % len(samples)
        width = max(len(r) for r in rows)
        ids = torch.full((batch_size, width), pad_id, dtype=torch.long)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        yield ids, mask, labels, sum(len(r) for r in rows)


def run_steps(
    trainer: Trainer,
    batches: Iterator,
    device: str,
    warmup_steps: int,
    measured_steps: int,
) -> tuple[list[StepRecord], float | None, EnergyWindow]:
    """Returns every step, the highest device-level memory seen after a step (GPUs only) and
    the energy of the measured steps."""
    steps: list[StepRecord] = []
    device_peak = None
    energy = EnergyWindow(device)
    for index in range(warmup_steps + measured_steps):
        if index == warmup_steps:
            reset_peaks(device)
            synchronize(device)
            energy.start()
        ids, mask, labels, tokens = next(batches)
        loss, elapsed_ms = timed_step(trainer, ids, mask, labels, device)
        tokens, padded = global_token_counts(tokens, ids.numel(), device, trainer)
        graphs = trainer.compiled_graphs()
        steps.append(
            StepRecord(index, index < warmup_steps, elapsed_ms, tokens, padded, loss, graphs)
        )
        used = device_used_gb(device)
        if used is not None:
            device_peak = max(device_peak or 0.0, used)
    return steps, device_peak, energy.stop()


def timed_step(trainer: Trainer, ids, mask, labels, device: str) -> tuple[float, float]:
    """One step on the device, timed with the device synchronised before and after: the loss
    and the milliseconds it took. Every timed step of a probe (measured or profiled) is this."""
    ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
    synchronize(device)
    start = time.perf_counter()
    loss = trainer.step(ids, mask, labels)
    synchronize(device)
    return loss, (time.perf_counter() - start) * 1000


def plain_steps(trainer: Trainer, batches: Iterator, device: str, count: int) -> None:
    """Steps with nothing measured and no collective of their own: what the other ranks run
    while rank 0 profiles, so both sides issue the same collectives."""
    for _ in range(count):
        ids, mask, labels, _ = next(batches)
        trainer.step(ids.to(device), mask.to(device), labels.to(device))


def global_token_counts(tokens: int, padded: int, device: str, trainer: Trainer) -> tuple[int, int]:
    """Tokens of this step over all data-parallel ranks (outside the timed region); ranks that
    share a batch (tensor parallel) count it once."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tokens, padded
    counts = torch.tensor([tokens, padded], dtype=torch.long, device=device)
    dist.all_reduce(counts, group=trainer.data_parallel_group)
    return int(counts[0]), int(counts[1])
