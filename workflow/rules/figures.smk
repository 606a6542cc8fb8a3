from llmdissect.serving_figures import SERVING_FIGURES

FIGURES = expand(
    "results/figures/{figure}.{ext}",
    figure=[
        *[f"{stage}_throughput" for stage in TRAINING_STAGES],
        "pretrain_method_tradeoff",
        *(SERVING_FIGURES if "serve" in config else []),
        *(["fig5_idle_share"] if "profile" in config else []),
    ],
    ext=["png", "pdf"],
)


rule figure_training_throughput:
    input:
        cells="results/tidy/cells.parquet",
    output:
        png=report(
            "results/figures/{stage}_throughput.png",
            caption="../report/training_throughput.rst",
            category="Figures",
        ),
        pdf="results/figures/{stage}_throughput.pdf",
    log:
        "results/logs/figures/{stage}_throughput.log",
    wildcard_constraints:
        stage="pretrain|finetune",
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/figure_training.py"


rule figure_method_tradeoff:
    input:
        cells="results/tidy/cells.parquet",
    output:
        png=report(
            "results/figures/pretrain_method_tradeoff.png",
            caption="../report/method_tradeoff.rst",
            category="Figures",
        ),
        pdf="results/figures/pretrain_method_tradeoff.pdf",
    log:
        "results/logs/figures/pretrain_method_tradeoff.log",
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/figure_method_tradeoff.py"


rule figure_serving:
    input:
        cells="results/tidy/cells.parquet",
        requests="results/tidy/serving_requests.parquet",
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/serving_figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "results/logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(SERVING_FIGURES),
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/figure_serving.py"


rule figure_idle_share:
    input:
        cells="results/tidy/cells.parquet",
    output:
        png=report(
            "results/figures/fig5_idle_share.png",
            caption="../report/fig5_idle_share.rst",
            category="Figures",
        ),
        pdf="results/figures/fig5_idle_share.pdf",
    log:
        "results/logs/figures/fig5_idle_share.log",
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/figure_idle_share.py"
