from llmdissect.data import serving_prompts, write_serving_prompts
from llmdissect.models import shape_from_config
from llmdissect.rule_io import logged

with logged(snakemake.log[0]):
    data = snakemake.params.data
    shape = shape_from_config(snakemake.wildcards.model, snakemake.params.model_shapes)
    prompts = serving_prompts(
        seed=snakemake.params.seed,
        count=data["serving_prompts"],
        prompt_len=data["prompt_len"],
        vocab_size=shape.vocab_size,
    )
    write_serving_prompts(snakemake.output[0], prompts)
    print(f"{len(prompts)} prompts of {data['prompt_len']} tokens")
