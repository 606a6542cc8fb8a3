import pandas as pd

from llmdissect.rule_io import logged
from llmdissect.serving_figures import draw_serving_figure

with logged(snakemake.log[0]):
    cells = pd.read_parquet(snakemake.input.cells)
    requests = pd.read_parquet(snakemake.input.requests)
    out = snakemake.output
    draw_serving_figure(snakemake.wildcards.figure, cells, requests, out.png, out.pdf)
