from pathlib import Path

from llmdissect.cells import TrainingCell
from llmdissect.data import file_sha256
from llmdissect.placement import claimed_devices
from llmdissect.resume import batch_one_record
from llmdissect.rule_io import echo, exit_on_sigterm, logged
from llmdissect.rule_params import run_policy
from llmdissect.training.cell import ProbeLimits, SearchSettings, run_training_cell
from llmdissect.training.spec import measurement_spec, record_settings, training_options

exit_on_sigterm()
with logged(snakemake.log[0]), claimed_devices(snakemake.resources.gpu, log=echo):
    w, measurement = snakemake.wildcards, snakemake.params.measurement
    stage = measurement["stage"]
    cell = TrainingCell(stage, w.platform, w.model, w.framework, w.method, int(w.world), w.batch)
    spec = measurement_spec(
        measurement,
        w.framework,
        w.method,
        snakemake.input.samples,
        cell.world_size,
        training_options(measurement, stage, w.framework),
        snakemake.threads,
    )
    settings = record_settings(spec, file_sha256(snakemake.input.samples))
    if stage == "ladder":  # its place among the rungs, for the table's order
        settings["ladder_rung"] = snakemake.config["ladder"]["rungs"].index(w.method)
    policy = run_policy(snakemake.config, stage)
    run_training_cell(
        cell,
        spec,
        SearchSettings(**measurement.get("max_batch_search", {}), method=policy["search_method"]),
        settings=settings,
        record_path=Path(snakemake.output.record),
        steps_path=Path(snakemake.output.steps),
        workdir=Path(snakemake.params.workdir),
        limits=ProbeLimits(policy["probe_timeout_s"], policy["probe_retries"]),
        log=echo,
        repeats=measurement.get("repeats", 1),
        largest_record=snakemake.input.get("largest") or None,
        batch_one_record=batch_one_record(snakemake.config, cell),
    )
