"""vLLM's offline engine on the serving cell's prompts: the throughput a served run is compared
with (served output tokens/s over offline output tokens/s; the aim is at least 0.95).

Same model card (its tokenizer detokenizes, as the server's does), prompts (token ids),
max_tokens, ignore_eos, dtype and memory fraction as the serving cell; no HTTP, no client.

Run: python benchmarks/vllm_offline.py results/data/llama2-7b/model \\
         results/data/llama2-7b/prompts.jsonl --max-tokens 128 --out offline.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from llmdissect.serving.cell import read_prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("prompts", type=Path)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--memory-fraction", type=float, default=0.9)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from vllm import LLM, SamplingParams, TokensPrompt

    prompts = read_prompts(args.prompts)
    started = time.perf_counter()
    llm = LLM(
        model=str(args.model_dir),
        load_format="dummy",
        dtype=args.dtype,
        gpu_memory_utilization=args.memory_fraction,
        max_model_len=len(prompts[0]) + args.max_tokens,
    )
    startup_s = time.perf_counter() - started
    sampling = SamplingParams(max_tokens=args.max_tokens, ignore_eos=True)
    inputs = [TokensPrompt(prompt_token_ids=p) for p in prompts]
    llm.generate(inputs[:2], SamplingParams(max_tokens=4, ignore_eos=True))
    started = time.perf_counter()
    outputs = llm.generate(inputs, sampling)
    elapsed = time.perf_counter() - started
    output_tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    prompt_tokens = sum(len(p) for p in prompts)
    result = {
        "prompts": len(prompts),
        "max_tokens": args.max_tokens,
        "startup_s": startup_s,
        "elapsed_s": elapsed,
        "output_tokens": output_tokens,
        "output_tokens_per_s": output_tokens / elapsed,
        "total_tokens_per_s": (output_tokens + prompt_tokens) / elapsed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
