#!/usr/bin/env bash
# Create .venv with the pinned CPU stack and the llmdissect library. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
# torch first and pinned: an unpinned torch would pull several GB of CUDA packages.
.venv/bin/pip install --quiet -c envs/constraints.txt torch==2.13.0
.venv/bin/pip install --quiet -c envs/constraints.txt -e ".[dev,gpu]"
echo "llmdissect: environment ready in .venv"
