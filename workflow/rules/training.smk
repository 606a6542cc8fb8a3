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
    # every core for a CPU cell, a share of them beside other GPU cells (profiles/slurm: cpus_per_task)
    threads: cell_threads
    resources:
        **scheduler_resources(),
        # GPUs: one per process (none on a CPU platform); the job claims which ones.
        gpu=cell_gpu_count,
        # Cells without GPUs share the CPU: one at a time (the local profile caps it).
        measure_slot=cpu_measure_slot,
    params:
        # exactly what the cell measures with: another cell's settings never re-measure this one
        measurement=lambda w: training_measurement(config, w.stage, w),
        workdir=lambda w: f"results/work/{w.stage}/{w.platform}/{w.model}/{w.framework}/{w.method}/w{w.world}/b{w.batch}",
    script:
        "../scripts/training_cell.py"


rule ladder_cell:
    input:
        samples="results/data/{model}/train.jsonl",
        model_card="results/data/{model}/model",
        largest=ladder_batch_record,
    output:
        record="results/records/ladder/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.json",
        steps="results/records/ladder/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.steps.jsonl",
    log:
        "results/logs/ladder/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.log",
    benchmark:
        "results/benchmarks/ladder/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: cell_threads
    resources:
        **scheduler_resources(),
        gpu=cell_gpu_count,
        measure_slot=cpu_measure_slot,
    params:
        measurement=lambda w: ladder_measurement(config, w),
        workdir=lambda w: f"results/work/ladder/{w.platform}/{w.model}/{w.framework}/{w.method}/w{w.world}/b{w.batch}",
    script:
        "../scripts/training_cell.py"
