from llmdissect.data import training_samples, write_training_samples
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    asked = snakemake.params.samples
    samples = training_samples(
        seed=asked["seed"],
        count=asked["count"],
        mean_len=asked["mean_len"],
        spread=asked["spread"],
        vocab_size=asked["vocab_size"],
    )
    write_training_samples(snakemake.output[0], samples)
    print(f"{len(samples)} samples, mean length {sum(map(len, samples)) / len(samples):.1f}")
