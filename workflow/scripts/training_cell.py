from pathlib import Path

from llmdissect.cells import TrainingCell
from llmdissect.data import file_sha256
from llmdissect.models import shape_from_config
from llmdissect.placement import claimed_devices
from llmdissect.rule_io import echo, exit_on_sigterm, logged
from llmdissect.training.cell import SearchSettings, run_training_cell
from llmdissect.training.spec import record_settings, stage_spec, training_options

exit_on_sigterm()
with logged(snakemake.log[0]), claimed_devices(snakemake.resources.gpu, log=echo):
    w, params = snakemake.wildcards, snakemake.params
    settings = params.settings
    cell = TrainingCell(
        params.stage, w.platform, w.model, w.framework, w.method, int(w.world), w.batch
    )
    spec = stage_spec(
        shape_from_config(w.model, params.model_shapes),
        w.framework,
        w.method,
        snakemake.input.samples,
        settings,
        params.platform,
        params.seed,
        cell.world_size,
        training_options(settings, params.stage, w.framework),
    )
    run_training_cell(
        cell,
        spec,
        SearchSettings(**settings["max_batch_search"]),
        settings=record_settings(spec, file_sha256(snakemake.input.samples)),
        record_path=Path(snakemake.output.record),
        steps_path=Path(snakemake.output.steps),
        workdir=Path(params.workdir),
        probe_timeout_s=settings["probe_timeout_s"],
        log=echo,
    )
