from llmdissect.data import write_random_weights
from llmdissect.models import ModelShape
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    shape = ModelShape(**snakemake.params.shape)
    write_random_weights(shape, snakemake.output[0])
    print(f"random weights for {shape} in {snakemake.output[0]}")
