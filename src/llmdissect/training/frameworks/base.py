"""The interface every training framework offers to the shared loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager

from ...frameworks import FRAMEWORKS
from ...methods import method_problem
from ...profiling.phases import PHASE_PREFIX
from ..memory import enter_phase
from ..spec import TrainSpec


@contextmanager
def phase(name: str):
    """Marks forward, backward and optimizer in a step; the profiler keeps the ranges (on the
    GPU also as ranges of the kernels they launched), and without a profiler they cost ~1 us.
    On a GPU each phase's peak memory is kept apart (training/memory.py: PhasePeaks)."""
    import torch

    enter_phase(name)
    with torch.profiler.record_function(PHASE_PREFIX + name):
        yield


class Trainer(ABC):
    """One model, optimizer and method, ready to run steps on a device."""

    details: dict  # what actually ran (attention kernel, optimizer ...), copied into the record
    # Which share of the data this rank trains on; None: the whole process group is data parallel.
    data_parallel_rank: int | None = None
    data_parallel_size: int | None = None
    data_parallel_group = None

    @abstractmethod
    def step(self, input_ids, attention_mask, labels) -> float:
        """Forward, backward and optimizer update on one batch; returns the loss."""

    @abstractmethod
    def parameter_counts(self) -> dict:
        """params_total and params_trainable."""

    def compiled_graphs(self) -> int | None:
        """Graphs torch.compile has made so far; None where nothing is compiled."""
        return None

    def root_module(self):
        """The model as a torch module, whose submodules the profiler marks."""
        return self.model


class Framework(ABC):
    name: str  # its key in llmdissect.frameworks.FRAMEWORKS

    @property
    def distributed(self) -> bool:
        """Launched by torchrun, one process per device, with a process group."""
        return FRAMEWORKS[self.name].multi_process

    def infeasible_reason(self, spec: TrainSpec) -> str | None:
        """Why this cell cannot run at all (not an OOM), or None."""
        return method_problem(self.name, spec.method)

    @abstractmethod
    def build(self, spec: TrainSpec, device: str) -> Trainer:
        """Model and optimizer on this rank's device; may raise an out-of-memory error."""
