"""Megatron-core on a CPU: the few places where it assumes CUDA, patched in one place.

Applied only when a Megatron cell runs on the CPU, in that cell's own process. Dropout is zero in
every measured model, so replacing the CUDA random-state tracker changes no computation.
"""

from __future__ import annotations

import contextlib

import torch


class CpuRngTracker:
    """Stands in for Megatron's CUDA RNG tracker: forks are no-ops on the CPU generator."""

    def fork(self, name: str = "model-parallel-rng"):
        return contextlib.nullcontext()

    def add(self, name: str, seed: int) -> None:
        pass

    def reset(self) -> None:
        pass

    def get_states(self) -> dict:
        return {}

    def set_states(self, states: dict) -> None:
        pass


def apply_cpu_shims() -> None:
    import megatron.core.tensor_parallel as tensor_parallel
    import megatron.core.tensor_parallel.random as megatron_random

    tracker = CpuRngTracker()
    megatron_random.get_cuda_rng_tracker = lambda *args, **kwargs: tracker
    tensor_parallel.get_cuda_rng_tracker = megatron_random.get_cuda_rng_tracker
    megatron_random._get_cuda_rng_state = lambda *args, **kwargs: torch.get_rng_state()
    megatron_random._set_cuda_rng_state = lambda state, *args, **kwargs: torch.set_rng_state(state)
    torch.cuda.get_rng_state = torch.get_rng_state
    # Rotary embeddings place their frequencies on torch.cuda.current_device().
    torch.cuda.current_device = lambda: "cpu"
