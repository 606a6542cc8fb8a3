import pandas as pd

from llmdissect.figures import idle_share_figure
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    cells = pd.read_parquet(snakemake.input.cells)
    idle_share_figure(cells, "profile", snakemake.output.png, snakemake.output.pdf)
