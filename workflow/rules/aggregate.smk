TABLES = expand(
    "results/tables/{table}.{ext}",
    table=["table1_hardware", "table2_pretrain"],
    ext=["md", "csv", "tex"],
)


rule tidy_results:
    input:
        measured=measured_records(),
        imported=imported_records(),
    output:
        metrics="results/tidy/metrics.parquet",
        metrics_csv="results/tidy/metrics.csv",
        cells="results/tidy/cells.parquet",
        platforms="results/tidy/platforms.csv",
    log:
        "results/logs/aggregate/tidy_results.log",
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/tidy_results.py"


rule render_tables:
    input:
        cells="results/tidy/cells.parquet",
        platforms="results/tidy/platforms.csv",
    output:
        table1=multiext("results/tables/table1_hardware", ".md", ".tex"),
        table1_csv=report(
            "results/tables/table1_hardware.csv",
            caption="../report/table1_hardware.rst",
            category="Tables",
        ),
        table2=multiext("results/tables/table2_pretrain", ".md", ".tex"),
        table2_csv=report(
            "results/tables/table2_pretrain.csv",
            caption="../report/table2_pretrain.rst",
            category="Tables",
        ),
    log:
        "results/logs/aggregate/render_tables.log",
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/render_tables.py"


rule summary:
    input:
        tables=[t for t in TABLES if t.endswith(".md")],
        figures=lambda w: [f for f in FIGURES if f.endswith(".png")],
    output:
        "results/summary.md",
    log:
        "results/logs/aggregate/summary.log",
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/summary.py"
