import gzip
import time
from pathlib import Path

from llmdissect.cells import TrainingCell
from llmdissect.data import file_sha256
from llmdissect.environment import collect_manifest
from llmdissect.models import ModelShape
from llmdissect.placement import claimed_devices
from llmdissect.records import make_record, now_iso, read_record, write_json_atomic
from llmdissect.rule_io import echo, exit_on_sigterm, logged
from llmdissect.rule_params import run_policy
from llmdissect.training.cell import ProbeLimits, SearchSettings, run_training_cell
from llmdissect.training.spec import record_settings, stage_spec, training_options


def largest_batch(record_path):
    """The batch the pre-training cell found, or why there is none."""
    record = read_record(Path(record_path))
    if record["status"] != "ok":
        return None, f"{record['key']} has no largest batch: it is {record['status']}"
    return record["metrics"]["batch_size"], None


exit_on_sigterm()
with logged(snakemake.log[0]), claimed_devices(snakemake.resources.gpu, log=echo):
    w, out = snakemake.wildcards, snakemake.output
    measurement = snakemake.params.measurement
    cell = TrainingCell(
        "profile", w.platform, w.model, w.framework, w.method, int(w.world), w.batch
    )
    batch_size, problem = (None, None)
    if w.batch == "max":
        batch_size, problem = largest_batch(snakemake.input.largest)
    if problem:  # recorded, not a crash: the table shows why the cell is empty
        record = make_record(
            cell.key, cell.as_dict(), "infeasible", {}, {}, collect_manifest(), now_iso(),
            time.monotonic(),
            reason=problem,
        )  # fmt: skip
        write_json_atomic(Path(out.record), record)
        Path(out.steps).write_text("")
        gzip.open(out.trace, "wb").close()
        echo(f"{cell.key}: infeasible {problem}")
    else:
        active_steps = measurement["active_steps"]
        options = training_options(measurement, "pretrain", w.framework)
        options["profile"] = {"active_steps": active_steps, "trace_path": out.trace}
        spec = stage_spec(
            ModelShape(**measurement["model_shape"]),
            w.framework,
            w.method,
            snakemake.input.samples,
            measurement,
            measurement["platform"],
            measurement["seed"],
            cell.world_size,
            options,
            cpu_threads=snakemake.threads,
        )
        policy = run_policy(snakemake.config, "profile")
        run_training_cell(
            cell,
            spec,
            SearchSettings(),
            settings={
                **record_settings(spec, file_sha256(snakemake.input.samples)),
                "profiled_steps": active_steps,
            },
            record_path=Path(out.record),
            steps_path=Path(out.steps),
            workdir=Path(snakemake.params.workdir),
            limits=ProbeLimits(policy["probe_timeout_s"], policy["probe_retries"]),
            log=echo,
            batch_size=batch_size or int(w.batch),
        )
        if not Path(out.trace).exists():  # the cell failed before its profiled steps
            gzip.open(out.trace, "wb").close()
