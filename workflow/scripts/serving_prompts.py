from llmdissect.data import serving_prompts, write_serving_prompts
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    asked = snakemake.params.prompts
    prompts = serving_prompts(
        seed=asked["seed"],
        count=asked["count"],
        prompt_len=asked["prompt_len"],
        vocab_size=asked["vocab_size"],
    )
    write_serving_prompts(snakemake.output[0], prompts)
    print(f"{len(prompts)} prompts of {asked['prompt_len']} tokens")
