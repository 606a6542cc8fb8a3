"""How an out-of-memory failure reads, in any stage's error text (torch, cuBLAS, engines' logs)."""

from __future__ import annotations

# cuBLAS reports a full device as a failed handle or workspace allocation, not as a torch OOM.
OOM_MARKERS = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "cublas_status_alloc_failed",
)


def says_out_of_memory(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in OOM_MARKERS)
