import pandas as pd

from llmdissect.figures import training_throughput_figure
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    cells = pd.read_parquet(snakemake.input.cells)
    out, stage = snakemake.output, snakemake.wildcards.stage
    training_throughput_figure(cells, stage, out.png, out.pdf)
