rule profile_cell:
    input:
        samples="results/data/{model}/train.jsonl",
        model_card="results/data/{model}/model",
        largest=largest_batch_record,
    output:
        record="results/records/profile/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.json",
        steps="results/records/profile/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.steps.jsonl",
        trace="results/records/profile/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.trace.json.gz",
    log:
        "results/logs/profile/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.log",
    benchmark:
        "results/benchmarks/profile/{platform}/{model}/{framework}/{method}/w{world}/b{batch}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: cell_threads
    resources:
        **scheduler_resources(),
        gpu=cell_gpu_count,
        measure_slot=cpu_measure_slot,
    params:
        measurement=lambda w: profile_measurement(config, w),
        workdir=lambda w: f"results/work/profile/{w.platform}/{w.model}/{w.framework}/{w.method}/w{w.world}/b{w.batch}",
    script:
        "../scripts/profile_cell.py"
