import pandas as pd

from llmdissect.figures import method_tradeoff_figure
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    cells = pd.read_parquet(snakemake.input.cells)
    method_tradeoff_figure(cells, "pretrain", snakemake.output.png, snakemake.output.pdf)
