from llmdissect.data import training_samples, write_training_samples
from llmdissect.models import shape_from_config
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    data = snakemake.params.data
    shape = shape_from_config(snakemake.wildcards.model, snakemake.params.model_shapes)
    samples = training_samples(
        seed=snakemake.params.seed,
        count=data["train_samples"],
        mean_len=data["seq_len"],
        spread=data["seq_len_spread"],
        vocab_size=shape.vocab_size,
    )
    write_training_samples(snakemake.output[0], samples)
    print(f"{len(samples)} samples, mean length {sum(map(len, samples)) / len(samples):.1f}")
