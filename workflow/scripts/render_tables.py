from pathlib import Path

import pandas as pd

from llmdissect.rule_io import logged
from llmdissect.tables import training_table, write_table

with logged(snakemake.log[0]):
    cells = pd.read_parquet(snakemake.input.cells)
    platforms = pd.read_csv(snakemake.input.platforms)
    write_table(
        platforms,
        Path(snakemake.output.table1_csv).with_suffix(""),
        "Table I: hardware of each platform, from the environment manifests",
    )
    table2, note = training_table(cells, "pretrain")
    write_table(
        table2,
        Path(snakemake.output.table2_csv).with_suffix(""),
        "Table II: pre-training throughput and memory at batch 1 and the largest batch",
        note,
    )
