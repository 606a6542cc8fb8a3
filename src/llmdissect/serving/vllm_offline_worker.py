"""vLLM's offline engine on a serving cell's prompts, run by the engine's own interpreter (its
venv need not hold llmdissect: standard library and vLLM only). It prints a line as the
measured generation starts and one as it ends, so that the caller's energy window covers the
generation alone, and writes its counts as JSON."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

GENERATING = "llmdissect-offline: generating"
GENERATED = "llmdissect-offline: generated"
WARMUP_PROMPTS, WARMUP_TOKENS = 2, 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=Path, required=True)
    parser.add_argument("--max-tokens", type=int, required=True)
    parser.add_argument("--counts", type=Path, required=True)
    # the served cell's engine flags, vLLM's own names (an unknown one is refused by name)
    parser.add_argument("--model", required=True)
    parser.add_argument("--load-format", required=True)
    parser.add_argument("--dtype", required=True)
    parser.add_argument("--tensor-parallel-size", type=int, required=True)
    parser.add_argument("--gpu-memory-utilization", type=float, required=True)
    parser.add_argument("--max-model-len", type=int, required=True)
    parser.add_argument("--max-num-batched-tokens", type=int)
    args = parser.parse_args()

    from vllm import LLM, SamplingParams, TokensPrompt

    lines = args.prompts.read_text().splitlines()
    prompts = [json.loads(line)["prompt_token_ids"] for line in lines if line.strip()]
    engine = {
        key: getattr(args, key)
        for key in ("model", "load_format", "dtype", "tensor_parallel_size",
                    "gpu_memory_utilization", "max_model_len", "max_num_batched_tokens")
        if getattr(args, key) is not None
    }  # fmt: skip
    started = time.perf_counter()
    llm = LLM(**engine)
    startup_s = time.perf_counter() - started
    inputs = [TokensPrompt(prompt_token_ids=ids) for ids in prompts]
    llm.generate(inputs[:WARMUP_PROMPTS], SamplingParams(max_tokens=WARMUP_TOKENS, ignore_eos=True))
    print(GENERATING, flush=True)
    started = time.perf_counter()
    outputs = llm.generate(inputs, SamplingParams(max_tokens=args.max_tokens, ignore_eos=True))
    elapsed_s = time.perf_counter() - started
    print(GENERATED, flush=True)
    counts = [len(output.outputs[0].token_ids) for output in outputs]
    result = {
        "startup_s": startup_s,
        "elapsed_s": elapsed_s,
        "requests": len(prompts),
        "prompt_tokens": sum(len(ids) for ids in prompts),
        "output_tokens": sum(counts),
        "token_count_mismatches": sum(count != args.max_tokens for count in counts),
    }
    args.counts.write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
