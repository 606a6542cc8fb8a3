FIGURES = expand("results/figures/pretrain_throughput.{ext}", ext=["png", "pdf"])


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
