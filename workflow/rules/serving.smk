rule model_weights:
    output:
        directory("results/data/{model}/weights"),
    log:
        "results/logs/data/{model}/model_weights.log",
    conda:
        "../../envs/pipeline.yaml"
    resources:
        gpu=weights_gpu_count,
    params:
        shape=lambda w: model_shape(config, w.model),
    script:
        "../scripts/model_weights.py"


rule serving_cell:
    input:
        prompts="results/data/{model}/prompts.jsonl",
        model=lambda w: engine_model_dir(w.engine, w.model),
    output:
        record=f"results/records/{SERVING_CELL}.json",
        trace=f"results/records/{SERVING_CELL}.trace.jsonl",
    log:
        cell=f"results/logs/{SERVING_CELL}.log",
        server=f"results/logs/{SERVING_CELL}.server.log",
    benchmark:
        f"results/benchmarks/{SERVING_CELL}.tsv"
    conda:
        "../../envs/serve.yaml"
    threads: cell_threads
    resources:
        **scheduler_resources(),
        gpu=cell_gpu_count,
        measure_slot=cpu_measure_slot,
    params:
        measurement=lambda w: serving_measurement(config, w),
    script:
        "../scripts/serving_cell.py"
