rule pretrain_cell:
    input:
        samples="results/data/{model}/train.jsonl",
        model_card="results/data/{model}/model",
    output:
        record="results/records/pretrain/{platform}/{model}/{framework}/{method}/b{batch}.json",
        steps="results/records/pretrain/{platform}/{model}/{framework}/{method}/b{batch}.steps.jsonl",
    log:
        "results/logs/pretrain/{platform}/{model}/{framework}/{method}/b{batch}.log",
    benchmark:
        "results/benchmarks/pretrain/{platform}/{model}/{framework}/{method}/b{batch}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        # One measuring job per device at a time: the profiles cap this resource.
        measure_slot=1,
    params:
        stage="pretrain",
        platform=PLATFORM_SETTINGS,
        seed=config["seed"],
        settings=config["pretrain"],
        model_shapes=config["model_shapes"],
        workdir=lambda w: f"results/work/pretrain/{w.platform}/{w.model}/{w.framework}/{w.method}/b{w.batch}",
    script:
        "../scripts/training_cell.py"
