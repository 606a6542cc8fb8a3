from llmdissect.report import registry
from llmdissect.report.coverage import in_paper_order

# Every table of the registry, whatever stages run: an empty one says nothing was measured.
TABLES = expand(
    "results/tables/{table}.{ext}",
    table=[table.name for table in registry.TABLES],
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
        requests="results/tidy/serving_requests.parquet",
        top_operators="results/tidy/top_operators.parquet",
    log:
        "results/logs/aggregate/tidy_results.log",
    conda:
        "../../envs/pipeline.yaml"
    params:
        rates=platform_rates(config),
    script:
        "../scripts/tidy_results.py"


rule render_tables:
    input:
        # the tidy frames the tables take, named as tidy_results writes them
        **{
            name: getattr(rules.tidy_results.output, name)
            for name in registry.table_inputs()
        },
    output:
        **{
            table.name: report(
                f"results/tables/{table.name}.csv",
                caption=f"../report/{table.caption}",
                category="Tables",
            )
            for table in registry.TABLES
        },
        other_formats=[t for t in TABLES if not t.endswith(".csv")],
        claims=report(
            "results/claims.csv",
            caption="../report/claims.rst",
            category="Study verdicts",
        ),
        coverage=report(
            "results/coverage.csv",
            caption="../report/coverage.rst",
            category="Study verdicts",
        ),
        pages=expand(
            "results/{page}.{ext}", page=["claims", "coverage"], ext=["md", "tex"]
        ),
    log:
        "results/logs/aggregate/render_tables.log",
    conda:
        "../../envs/pipeline.yaml"
    params:
        thresholds=config["claims"],
    script:
        "../scripts/render_tables.py"


rule summary:
    input:
        pages=["results/claims.md", "results/coverage.md"],
        # in the paper's order, the items beyond the study after them
        tables=[f"results/tables/{t.name}.md" for t in in_paper_order(registry.TABLES)],
        figures=lambda w: [
            f"results/figures/{f.name}.png"
            for f in in_paper_order(registry.planned_figures(config))
        ],
    output:
        "results/summary.md",
    log:
        "results/logs/aggregate/summary.log",
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/summary.py"
