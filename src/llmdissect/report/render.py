"""Tables and figures from tidy frames: the render_tables and figure rules call it on this run's
records, and `python -m llmdissect.render` on any folder of records (reference/h100, a cluster's
results/records) without running anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..rule_params import platform_rates
from .claims import Thresholds, judge_claims
from .coverage import coverage_frame
from .format import write_table
from .platforms import hardware_table
from .registry import FIGURES, TABLES, Figure, Table
from .tidy import (
    cells_frame,
    find_records,
    load_records,
    serving_requests_frame,
    top_operators_frame,
)


def build_table(table: Table, frames: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, str]:
    """The table and the note under it."""
    built = table.build(*(frames[name] for name in table.inputs))
    # training tables return their own note: it names the memory measured and whether MFU shows
    return built if isinstance(built, tuple) else (built, table.note)


def render_tables(frames: dict[str, pd.DataFrame], out: Path) -> dict[str, pd.DataFrame]:
    """Every table as <out>/<name>.md, .csv and .tex; returns them by name."""
    out = Path(out)
    built = {}
    for table in TABLES:
        frame, note = build_table(table, frames)
        write_table(frame, out / table.name, table.title, note, table.empty)
        built[table.name] = frame
    return built


def render_pages(
    frames: dict[str, pd.DataFrame], built: dict, out: Path, thresholds: dict | None = None
) -> None:
    """<out>/claims and <out>/coverage (.md, .csv, .tex): the study's claims judged against
    these records, and which of its items they cover."""
    limits = Thresholds.from_config(thresholds)
    write_table(
        judge_claims(frames["cells"], limits),
        Path(out) / "claims",
        "The study's claims against these records",
        CLAIMS_NOTE.format(**limits.__dict__),
    )
    write_table(
        coverage_frame(frames, built),
        Path(out) / "coverage",
        "Coverage: the study's tables and figures, in the paper's order",
        "measured: its cells ran here (or in imported records); partial: they ran and failed; "
        "wired only: the pipeline makes it, these records hold none of it",
    )


CLAIMS_NOTE = (
    "verdicts: holds; within noise (closer than {tie:.0%}, or intervals of repeats that "
    "overlap); differs by X points (more than {agree_points:g} points from the study's "
    "percentage); contradicts; not comparable (measured, but not what the claim is about); "
    "not measurable here (what it needs is not in these records); thresholds: config key claims"
)


def draw_figure(figure: Figure, frames: dict[str, pd.DataFrame], png: Path, pdf: Path) -> None:
    figure.draw(*(frames[name] for name in figure.inputs), png=png, pdf=pdf)


def render_folder(
    record_dirs: list[Path], out: Path, rates: dict | None = None, thresholds: dict | None = None
) -> int:
    paths = find_records(record_dirs)
    if not paths:
        raise SystemExit(f"no result records under {', '.join(map(str, record_dirs))}")
    records = load_records(paths)
    cells = cells_frame(records, rates)
    serving = (cells["stage"] == "serve").any()
    frames = {
        "cells": cells,
        "platforms": hardware_table(records),
        "top_operators": top_operators_frame(records),
        # request traces are read only where serving cells were recorded
        "requests": serving_requests_frame(paths) if serving else None,
    }
    built = render_tables(frames, out / "tables")
    render_pages(frames, built, out, thresholds)
    for figure in FIGURES:
        # serving figures only with serving cells; the others even empty, saying what is missing
        if "serve" in figure.stages and not serving:
            continue
        png, pdf = (out / "figures" / f"{figure.name}.{ext}" for ext in ("png", "pdf"))
        draw_figure(figure, frames, png, pdf)
    return len(records)


def read_config(path: Path) -> dict:
    """A study config file: its platforms' prices and bandwidths, its claims' thresholds."""
    import yaml

    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config.get("platforms"), dict):
        raise SystemExit(f"{path}: no `platforms` mapping to read prices and bandwidths from")
    return config


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmdissect.render",
        description="Render the study's tables and figures from folders of result records.",
    )
    parser.add_argument("records", nargs="+", type=Path, help="folders holding record JSON")
    parser.add_argument(
        "--out", type=Path, required=True, help="writes tables/, figures/, claims and coverage here"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="a study config: platform prices and bandwidths (cost, MBU), claims thresholds",
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in [*args.records, args.config] if p and not p.exists()]
    if missing:
        parser.error(f"not found: {', '.join(missing)}")
    config = read_config(args.config) if args.config else {}
    rates = platform_rates(config) if config else None
    count = render_folder(args.records, args.out, rates, config.get("claims"))
    print(f"{count} records -> {args.out}/tables, {args.out}/figures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
