rule training_cell:
    input:
        samples="results/data/{model}/train.jsonl",
        model_card="results/data/{model}/model",
    output:
        record="results/records/{stage}/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.json",
        steps="results/records/{stage}/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.steps.jsonl",
    log:
        "results/logs/{stage}/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.log",
    benchmark:
        "results/benchmarks/{stage}/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.tsv"
    wildcard_constraints:
        stage="pretrain|finetune",
    conda:
        "../../envs/train.yaml"
    resources:
        # One measuring job per device at a time: the profiles cap this resource.
        measure_slot=1,
        # One GPU per process of the cell (none on a CPU platform).
        gpu=lambda w: int(w.world) if PLATFORM_SETTINGS["device"] == "cuda" else 0,
    params:
        stage=lambda w: w.stage,
        platform=PLATFORM_SETTINGS,
        seed=config["seed"],
        settings=lambda w: config[w.stage],
        model_shapes=config["model_shapes"],
        workdir=lambda w: f"results/work/{w.stage}/{w.platform}/{w.model}/{w.framework}/{w.method}/w{w.world}/b{w.batch}",
    script:
        "../scripts/training_cell.py"
