rule model_card:
    output:
        directory("results/data/{model}/model"),
    log:
        "results/logs/data/{model}/model_card.log",
    conda:
        "../../envs/pipeline.yaml"
    params:
        shape=lambda w: model_shape(config, w.model),
    script:
        "../scripts/model_card.py"


rule training_samples:
    output:
        "results/data/{model}/train.jsonl",
    log:
        "results/logs/data/{model}/training_samples.log",
    conda:
        "../../envs/pipeline.yaml"
    params:
        samples=lambda w: training_samples_params(config, w.model),
    script:
        "../scripts/training_samples.py"


rule serving_prompts:
    output:
        "results/data/{model}/prompts.jsonl",
    log:
        "results/logs/data/{model}/serving_prompts.log",
    conda:
        "../../envs/pipeline.yaml"
    params:
        prompts=lambda w: serving_prompts_params(config, w.model),
    script:
        "../scripts/serving_prompts.py"
