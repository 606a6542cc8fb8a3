from pathlib import Path

from llmdissect.report import registry

# The registry's figures of the stages this config runs (the summary shows them in the paper's order).
FIGURES = expand(
    "results/figures/{figure}.{ext}",
    figure=[figure.name for figure in registry.planned_figures(config)],
    ext=["png", "pdf"],
)
CAPTIONS = Path(workflow.basedir) / "workflow/report"


rule figure:
    input:
        # the tidy frames the figure draws from, named as tidy_results writes them
        unpack(
            lambda w: {
                name: getattr(rules.tidy_results.output, name)
                for name in registry.FIGURE_BY_NAME[w.figure].inputs
            }
        ),
    output:
        # report() takes one caption file per rule: figure.rst shows the figure's own
        # caption (registry.Figure.caption), passed in as a param
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels=lambda w: {"figure": registry.FIGURE_BY_NAME[w.figure].title},
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "results/logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(registry.FIGURE_BY_NAME),
    localrule: True
    conda:
        "../../envs/pipeline.yaml"
    params:
        caption=lambda w: (
            CAPTIONS / registry.FIGURE_BY_NAME[w.figure].caption
        ).read_text(),
    script:
        "../scripts/figure.py"
