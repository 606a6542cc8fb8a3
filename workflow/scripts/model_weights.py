from llmdissect.data import write_random_weights
from llmdissect.models import shape_from_config
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    shape = shape_from_config(snakemake.wildcards.model, snakemake.params.model_shapes)
    write_random_weights(shape, snakemake.output[0])
    print(f"random weights for {shape} in {snakemake.output[0]}")
