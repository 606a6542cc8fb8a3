"""Which GPUs a measuring cell runs on.

Snakemake's `gpu` resource says how many GPUs run at once; it does not say which. On SLURM the
scheduler picks them and sets CUDA_VISIBLE_DEVICES for the job. On one machine each measuring
job claims its devices here: one lock file per device, held (flock) for as long as the cell
runs, so two measuring jobs never share a device, whatever runs beside them. The claimed
devices become the cell's CUDA_VISIBLE_DEVICES, which its probe processes inherit.

LLMDISSECT_DEVICES (a comma-separated list of device ids) replaces the devices torch sees: a
test uses it to fake N devices on a CPU machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from pathlib import Path

DEVICES_VARIABLE = "LLMDISSECT_DEVICES"
# One folder per machine, so runs from several checkouts exclude each other too.
LOCK_DIR = Path(tempfile.gettempdir()) / "llmdissect-devices"


def cell_gpus(platform: dict, world_size: int) -> int:
    """GPUs a cell needs: one per process on a GPU platform, none on a CPU one
    (`gpus_per_process` in the platform overrides, e.g. to test placement without GPUs)."""
    per_process = platform.get("gpus_per_process")
    if per_process is None:
        per_process = 1 if platform["device"] == "cuda" else 0
    return per_process * world_size


def cell_thread_count(cores: int, cell_gpus: int, machine_gpus: int | None) -> int:
    """CPU threads of a cell on one machine: cells without GPUs run one at a time and get every
    core; cells with GPUs run side by side and share the cores in proportion to their GPUs (of
    `machine_gpus`, the `gpu` resource the run was given; unknown: the cell has them all)."""
    if not cell_gpus:
        return cores
    return max(1, cores * cell_gpus // max(cell_gpus, machine_gpus or cell_gpus))


def machine_devices() -> list[str]:
    """Device ids to hand out: the faked ones, else those this run may see."""
    for variable in (DEVICES_VARIABLE, "CUDA_VISIBLE_DEVICES"):
        listed = os.environ.get(variable)
        if listed is not None:
            return [d.strip() for d in listed.split(",") if d.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


@contextlib.contextmanager
def claimed_devices(count: int, lock_dir: Path = LOCK_DIR, poll_s: float = 0.5, log=print):
    """Holds `count` devices for the block and sets CUDA_VISIBLE_DEVICES to them; yields their
    ids. A SLURM job that was given exactly its devices keeps them as they are."""
    if count == 0:
        yield []
        return
    devices = machine_devices()
    if "SLURM_JOB_ID" in os.environ and len(devices) == count:
        yield devices  # the scheduler gave this job exactly its devices
        return
    if count > len(devices):
        raise RuntimeError(
            f"the cell needs {count} GPUs and this machine has {len(devices)} "
            f"({DEVICES_VARIABLE} or torch's device count)"
        )
    lock_dir.mkdir(parents=True, exist_ok=True)
    held: list[tuple[str, object]] = []
    waited = False
    try:
        while len(held) < count:
            for device in devices:
                if len(held) == count or any(d == device for d, _ in held):
                    continue
                handle = open(lock_dir / f"device{device}.lock", "w")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held.append((device, handle))
                except BlockingIOError:
                    handle.close()
            if len(held) < count:
                # give back what is held, so two cells each holding half never wait on each other
                for _, handle in held:
                    handle.close()
                held.clear()
                if not waited:
                    log(f"waiting for {count} free GPUs of {len(devices)}")
                    waited = True
                time.sleep(poll_s)
        ids = [device for device, _ in held]
        previous = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
        try:
            yield ids
        finally:
            if previous is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = previous
    finally:
        for _, handle in held:
            handle.close()
