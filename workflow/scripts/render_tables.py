from pathlib import Path

from llmdissect.report.render import render_pages, render_tables
from llmdissect.report.tidy import read_tidy
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    frames = {name: read_tidy(path) for name, path in snakemake.input.items()}
    built = render_tables(frames, Path(snakemake.output[0]).parent)
    render_pages(frames, built, Path(snakemake.output.claims).parent, snakemake.params.thresholds)
