from llmdissect.aggregate import cells_frame, load_records, tidy_frame
from llmdissect.rule_io import logged
from llmdissect.tables import hardware_table

with logged(snakemake.log[0]):
    records = load_records([*snakemake.input.measured, *snakemake.input.imported])
    tidy = tidy_frame(records)
    tidy.to_parquet(snakemake.output.metrics, index=False)
    tidy.to_csv(snakemake.output.metrics_csv, index=False)
    cells_frame(records).to_parquet(snakemake.output.cells, index=False)
    hardware_table(records).to_csv(snakemake.output.platforms, index=False)
    print(f"{len(records)} records, {len(tidy)} metric rows")
