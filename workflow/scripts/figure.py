from llmdissect.report.registry import FIGURE_BY_NAME
from llmdissect.report.render import draw_figure
from llmdissect.report.tidy import read_tidy
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    frames = {name: read_tidy(path) for name, path in snakemake.input.items()}
    out = snakemake.output
    draw_figure(FIGURE_BY_NAME[snakemake.wildcards.figure], frames, out.png, out.pdf)
