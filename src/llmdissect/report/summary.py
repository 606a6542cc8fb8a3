"""results/summary.md: every rendered table and figure on one page, for a quick read."""

from __future__ import annotations

import os
from pathlib import Path


def write_summary(pages: list[str], tables: list[str], figures: list[str], out: str) -> None:
    """The verdict pages first (claims, coverage), then tables and figures as given (the
    paper's order)."""
    out_dir = Path(out).parent
    parts = ["# llmdissect results\n", "Tables and figures of this run; records are in records/.\n"]
    parts += [Path(p).read_text() for p in [*pages, *tables]]
    parts += [f"![{Path(f).stem}]({os.path.relpath(f, out_dir)})\n" for f in figures]
    Path(out).write_text("\n".join(parts))
