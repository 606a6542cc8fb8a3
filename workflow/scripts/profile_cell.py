from pathlib import Path

from llmdissect.cells import TrainingCell
from llmdissect.data import file_sha256
from llmdissect.placement import claimed_devices
from llmdissect.profiling.cell import run_profile_cell
from llmdissect.rule_io import echo, exit_on_sigterm, logged
from llmdissect.rule_params import run_policy
from llmdissect.training.cell import ProbeLimits
from llmdissect.training.spec import measurement_spec, record_settings, training_options

exit_on_sigterm()
with logged(snakemake.log[0]), claimed_devices(snakemake.resources.gpu, log=echo):
    w, out, measurement = snakemake.wildcards, snakemake.output, snakemake.params.measurement
    cell = TrainingCell(
        "profile", w.platform, w.model, w.framework, w.method, int(w.world), w.batch
    )
    options = training_options(measurement, "pretrain", w.framework)
    options["profile"] = {"active_steps": measurement["active_steps"], "trace_path": out.trace}
    spec = measurement_spec(
        measurement,
        w.framework,
        w.method,
        snakemake.input.samples,
        cell.world_size,
        options,
        snakemake.threads,
    )
    policy = run_policy(snakemake.config, "profile")
    run_profile_cell(
        cell,
        spec,
        settings={
            **record_settings(spec, file_sha256(snakemake.input.samples)),
            "profiled_steps": measurement["active_steps"],
        },
        largest_record=snakemake.input.get("largest") or None,
        record_path=Path(out.record),
        steps_path=Path(out.steps),
        trace_path=Path(out.trace),
        workdir=Path(snakemake.params.workdir),
        limits=ProbeLimits(policy["probe_timeout_s"], policy["probe_retries"]),
        log=echo,
        repeats=measurement.get("repeats", 1),
    )
