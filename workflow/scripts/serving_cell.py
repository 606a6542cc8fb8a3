from pathlib import Path

from llmdissect.cells import ServingCell
from llmdissect.hardware import device_memory_gb
from llmdissect.models import ModelShape
from llmdissect.placement import claimed_devices
from llmdissect.rule_io import echo, exit_on_sigterm, logged
from llmdissect.rule_params import serving_policy
from llmdissect.serving.cell import run_serving_cell

exit_on_sigterm()  # the engine's process group is stopped on the way out
with logged(snakemake.log.cell), claimed_devices(snakemake.resources.gpu, log=echo):
    w, measurement = snakemake.wildcards, snakemake.params.measurement
    engine_policy, workload_policy = serving_policy(snakemake.config, w)
    cell = ServingCell(w.platform, w.model, w.engine, w.workload, int(w.world))
    on_gpu = measurement["platform"]["device"] == "cuda"
    run_serving_cell(
        cell,
        shape=ModelShape(**measurement["model_shape"]),
        template={**measurement["engine"], **engine_policy},
        workload={**measurement["workload"], **workload_policy},
        model_dir=Path(snakemake.input.model),
        prompts_path=Path(snakemake.input.prompts),
        record_path=Path(snakemake.output.record),
        trace_path=Path(snakemake.output.trace),
        server_log=Path(snakemake.log.server),
        device_memory_gb=device_memory_gb() if on_gpu else None,
        log=echo,
    )
