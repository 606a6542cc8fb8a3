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
        **scheduler_resources(),
        # GPUs: one per process (none on a CPU platform); the job claims which ones.
        gpu=cell_gpu_count,
        # Cells without GPUs share the CPU: one at a time (the local profile caps it).
        measure_slot=cpu_measure_slot,
    params:
        stage=lambda w: w.stage,
        platform=platform_settings,
        seed=config["seed"],
        settings=lambda w: config[w.stage],
        model_shapes=config["model_shapes"],
        workdir=lambda w: f"results/work/{w.stage}/{w.platform}/{w.model}/{w.framework}/{w.method}/w{w.world}/b{w.batch}",
    script:
        "../scripts/training_cell.py"
