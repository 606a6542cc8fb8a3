from pathlib import Path

from llmdissect.report.render import render_tables
from llmdissect.report.tidy import read_tidy
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    frames = {name: read_tidy(path) for name, path in snakemake.input.items()}
    render_tables(frames, Path(snakemake.output[0]).parent)
