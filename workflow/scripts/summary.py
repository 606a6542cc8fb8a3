from llmdissect.rule_io import logged
from llmdissect.summary import write_summary

with logged(snakemake.log[0]):
    write_summary(snakemake.input.tables, snakemake.input.figures, snakemake.output[0])
