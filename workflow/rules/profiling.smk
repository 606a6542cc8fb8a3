PROFILE_CELL = training_cell_pattern("profile")


rule profile_cell:
    input:
        samples="results/data/{model}/train.jsonl",
        model_card="results/data/{model}/model",
        largest=largest_batch_record,
    output:
        record=f"results/records/{PROFILE_CELL}.json",
        steps=f"results/records/{PROFILE_CELL}.steps.jsonl",
        trace=f"results/records/{PROFILE_CELL}.trace.json.gz",
    log:
        f"results/logs/{PROFILE_CELL}.log",
    benchmark:
        f"results/benchmarks/{PROFILE_CELL}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: cell_threads
    resources:
        **scheduler_resources(),
        gpu=cell_gpu_count,
        measure_slot=cpu_measure_slot,
    params:
        measurement=lambda w: profile_measurement(config, w),
        workdir=work_folder(PROFILE_CELL),
    script:
        "../scripts/profile_cell.py"
