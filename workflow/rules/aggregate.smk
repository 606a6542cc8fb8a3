from llmdissect.render import TABLE_NAMES

TABLES = expand(
    "results/tables/{table}.{ext}", table=TABLE_NAMES, ext=["md", "csv", "tex"]
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
        requests="results/tidy/serving_requests.parquet",
        top_operators="results/tidy/top_operators.parquet",
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
        top_operators="results/tidy/top_operators.parquet",
    output:
        **{
            name: report(
                f"results/tables/{name}.csv",
                caption=f"../report/{name}.rst",
                category="Tables",
            )
            for name in TABLE_NAMES
        },
        other_formats=[t for t in TABLES if not t.endswith(".csv")],
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
