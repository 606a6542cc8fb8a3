from llmdissect.report.platforms import hardware_table
from llmdissect.report.tidy import (
    cells_frame,
    load_records,
    serving_requests_frame,
    tidy_frame,
    top_operators_frame,
)
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    paths = [*snakemake.input.measured, *snakemake.input.imported]
    records = load_records(paths)
    tidy = tidy_frame(records)
    tidy.to_parquet(snakemake.output.metrics, index=False)
    tidy.to_csv(snakemake.output.metrics_csv, index=False)
    cells_frame(records, snakemake.params.rates).to_parquet(snakemake.output.cells, index=False)
    hardware_table(records).to_csv(snakemake.output.platforms, index=False)
    serving_requests_frame(paths).to_parquet(snakemake.output.requests, index=False)
    top_operators_frame(records).to_parquet(snakemake.output.top_operators, index=False)
    print(f"{len(records)} records, {len(tidy)} metric rows")
