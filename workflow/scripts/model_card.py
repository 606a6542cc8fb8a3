from llmdissect.data import write_model_card
from llmdissect.models import ModelShape
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    shape = ModelShape(**snakemake.params.shape)
    write_model_card(shape, snakemake.output[0])
    print(f"model card for {shape} in {snakemake.output[0]}")
