"""The presentation layer: result records -> tidy data -> the study's tables and figures.

tidy.py turns records into tidy frames, platforms.py into Table I; format.py and plot.py are
the kit every table and figure uses; training.py, serving.py and profiling.py build each
stage's tables and figures; registry.py lists them all (the CLI, the rules and the tests read
it); render.py writes them; summary.py puts them on one page."""
