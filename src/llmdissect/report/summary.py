"""results/summary.md: every rendered table and figure on one page, for a quick read."""

from __future__ import annotations

import os
from pathlib import Path


def write_summary(tables: list[str], figures: list[str], out: str) -> None:
    out_dir = Path(out).parent
    parts = ["# llmdissect results\n", "Tables and figures of this run; records are in records/.\n"]
    parts += [Path(t).read_text() for t in tables]
    parts += [f"![{Path(f).stem}]({os.path.relpath(f, out_dir)})\n" for f in figures]
    Path(out).write_text("\n".join(parts))
