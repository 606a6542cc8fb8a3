from llmdissect.report.summary import write_summary
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    write_summary(
        snakemake.input.pages, snakemake.input.tables, snakemake.input.figures, snakemake.output[0]
    )
