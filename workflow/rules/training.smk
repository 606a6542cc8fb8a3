rule training_cell:
    input:
        samples="results/data/{model}/train.jsonl",
        model_card="results/data/{model}/model",
    output:
        record=f"results/records/{TRAINING_CELL}.json",
        steps=f"results/records/{TRAINING_CELL}.steps.jsonl",
    log:
        f"results/logs/{TRAINING_CELL}.log",
    benchmark:
        f"results/benchmarks/{TRAINING_CELL}.tsv"
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
        workdir=work_folder(TRAINING_CELL),
    script:
        "../scripts/training_cell.py"


LADDER_CELL = training_cell_pattern("ladder")


rule ladder_cell:
    input:
        samples="results/data/{model}/train.jsonl",
        model_card="results/data/{model}/model",
        largest=ladder_batch_record,
    output:
        record=f"results/records/{LADDER_CELL}.json",
        steps=f"results/records/{LADDER_CELL}.steps.jsonl",
    log:
        f"results/logs/{LADDER_CELL}.log",
    benchmark:
        f"results/benchmarks/{LADDER_CELL}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: cell_threads
    resources:
        **scheduler_resources(),
        gpu=cell_gpu_count,
        measure_slot=cpu_measure_slot,
    params:
        measurement=lambda w: ladder_measurement(config, w),
        workdir=work_folder(LADDER_CELL),
    script:
        "../scripts/training_cell.py"
