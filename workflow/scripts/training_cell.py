from pathlib import Path

from llmdissect.cells import TrainingCell
from llmdissect.data import file_sha256
from llmdissect.models import ModelShape
from llmdissect.placement import claimed_devices
from llmdissect.rule_io import echo, exit_on_sigterm, logged
from llmdissect.rule_params import run_policy
from llmdissect.training.cell import ProbeLimits, SearchSettings, run_training_cell
from llmdissect.training.spec import record_settings, stage_spec, training_options

exit_on_sigterm()
with logged(snakemake.log[0]), claimed_devices(snakemake.resources.gpu, log=echo):
    w, measurement = snakemake.wildcards, snakemake.params.measurement
    stage = measurement["stage"]
    cell = TrainingCell(stage, w.platform, w.model, w.framework, w.method, int(w.world), w.batch)
    spec = stage_spec(
        ModelShape(**measurement["model_shape"]),
        w.framework,
        w.method,
        snakemake.input.samples,
        measurement,
        measurement["platform"],
        measurement["seed"],
        cell.world_size,
        training_options(measurement, stage, w.framework),
        cpu_threads=snakemake.threads,
    )
    policy = run_policy(snakemake.config, stage)
    run_training_cell(
        cell,
        spec,
        SearchSettings(**measurement.get("max_batch_search", {})),
        settings=record_settings(spec, file_sha256(snakemake.input.samples)),
        record_path=Path(snakemake.output.record),
        steps_path=Path(snakemake.output.steps),
        workdir=Path(snakemake.params.workdir),
        limits=ProbeLimits(policy["probe_timeout_s"], policy["probe_retries"]),
        log=echo,
    )
