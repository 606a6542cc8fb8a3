rule model_weights:
    output:
        directory("results/data/{model}/weights"),
    log:
        "results/logs/data/{model}/model_weights.log",
    conda:
        "../../envs/pipeline.yaml"
    params:
        model_shapes=config["model_shapes"],
    script:
        "../scripts/model_weights.py"


rule serving_cell:
    input:
        prompts="results/data/{model}/prompts.jsonl",
        model=lambda w: engine_model_dir(w.engine, w.model),
    output:
        record="results/records/serve/{platform}/{model}/{engine}/{workload}/w{world}.json",
        trace="results/records/serve/{platform}/{model}/{engine}/{workload}/w{world}.trace.jsonl",
    log:
        cell="results/logs/serve/{platform}/{model}/{engine}/{workload}/w{world}.log",
        server="results/logs/serve/{platform}/{model}/{engine}/{workload}/w{world}.server.log",
    benchmark:
        "results/benchmarks/serve/{platform}/{model}/{engine}/{workload}/w{world}.tsv"
    conda:
        "../../envs/serve.yaml"
    resources:
        measure_slot=1,
        gpu=lambda w: int(w.world) if PLATFORM_SETTINGS["device"] == "cuda" else 0,
    params:
        engine=lambda w: config["engines"][w.engine],
        workload=lambda w: config["serve"]["workloads"][w.workload],
        platform=PLATFORM_SETTINGS,
        model_shapes=config["model_shapes"],
    script:
        "../scripts/serving_cell.py"
