from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/serving.smk"
include: "workflow/rules/profiling.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"


# Cheap steps run where Snakemake runs, not as cluster jobs: synthetic data, model cards,
# aggregation, tables and figures. Measuring cells (and writing large random weights) are jobs.
localrules:
    all,
    model_card,
    training_samples,
    serving_prompts,
    tidy_results,
    render_tables,
    summary,


rule all:
    default_target: True
    input:
        final_targets(),


onstart:
    # Under SLURM, a job that asks for more than its partition has would stay pending for good:
    # stop before submitting anything and say which rule asks for what (no check off SLURM).
    from llmdissect.slurm_preflight import check_partitions_or_exit

    check_partitions_or_exit(workflow)


onerror:
    # A cell whose job failed on its last attempt gets an error record: the next run renders
    # the tables with it instead of a hole.
    from llmdissect.failures import record_failed_cells

    written = record_failed_cells(
        log, {record_path(cell): cell for cell in measured_cells()}
    )
    for path in written:
        print(f"llmdissect: recorded as failed: {path}", file=sys.stderr)
    if written:
        print(
            "llmdissect: run the same command again to render the tables with them",
            file=sys.stderr,
        )
