from pathlib import Path

from llmdissect.cells import TrainingCell
from llmdissect.data import file_sha256
from llmdissect.models import shape_from_config
from llmdissect.rule_io import echo, exit_on_sigterm, logged
from llmdissect.training.cell import SearchSettings, run_training_cell
from llmdissect.training.spec import TrainSpec, training_options

exit_on_sigterm()
with logged(snakemake.log[0]):
    w, params = snakemake.wildcards, snakemake.params
    settings, platform = params.settings, params.platform
    cell = TrainingCell(
        params.stage, w.platform, w.model, w.framework, w.method, int(w.world), w.batch
    )
    shape = shape_from_config(w.model, params.model_shapes)
    spec = TrainSpec(
        shape=shape,
        framework=w.framework,
        method=w.method,
        batch_size=1,
        samples_path=snakemake.input.samples,
        device=platform["device"],
        dtype=settings["dtype"],
        warmup_steps=settings["warmup_steps"],
        measured_steps=settings["measured_steps"],
        learning_rate=settings["learning_rate"],
        seed=params.seed,
        memory_limit_gb=platform["memory_limit_gb"],
        world_size=cell.world_size,
        options=training_options(settings, params.stage, w.framework),
    )
    run_training_cell(
        cell,
        spec,
        SearchSettings(**settings["max_batch_search"]),
        settings={
            "model_shape": shape.as_dict(),
            "device": spec.device,
            "dtype": spec.dtype,
            "warmup_steps": spec.warmup_steps,
            "measured_steps": spec.measured_steps,
            "learning_rate": spec.learning_rate,
            "memory_limit_gb": spec.memory_limit_gb,
            "data_sha256": file_sha256(snakemake.input.samples),
            "world_size": cell.world_size,
        },
        record_path=Path(snakemake.output.record),
        steps_path=Path(snakemake.output.steps),
        workdir=Path(params.workdir),
        probe_timeout_s=settings["probe_timeout_s"],
        log=echo,
    )
