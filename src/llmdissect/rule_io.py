"""Helpers for the thin rule scripts: send their output to the rule's log."""

from __future__ import annotations

import contextlib
import signal
import sys
import traceback
from pathlib import Path


@contextlib.contextmanager
def logged(log_path: str):
    """Everything the script prints, and any traceback, goes to the rule's log file."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as log:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                yield log
            except BaseException:
                traceback.print_exc(file=log)
                raise


def echo(message: str) -> None:
    """A progress line in the log and on the terminal running the workflow."""
    print(message, flush=True)
    print(message, file=sys.__stderr__, flush=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (Snakemake or SLURM stopping the job) into SystemExit, so cleanup runs:
    probe processes are stopped instead of left holding the device."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
