FIGURES = expand(
    "results/figures/{figure}.{ext}",
    figure=["pretrain_throughput", "pretrain_method_tradeoff"],
    ext=["png", "pdf"],
)


rule figure_pretrain_throughput:
    input:
        cells="results/tidy/cells.parquet",
    output:
        png=report(
            "results/figures/pretrain_throughput.png",
            caption="../report/pretrain_throughput.rst",
            category="Figures",
        ),
        pdf="results/figures/pretrain_throughput.pdf",
    log:
        "results/logs/figures/pretrain_throughput.log",
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
