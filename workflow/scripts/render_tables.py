from pathlib import Path

import pandas as pd

from llmdissect.render import render_tables
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    render_tables(
        pd.read_parquet(snakemake.input.cells),
        pd.read_csv(snakemake.input.platforms),
        pd.read_parquet(snakemake.input.top_operators),
        Path(snakemake.output.table1_hardware).parent,
    )
