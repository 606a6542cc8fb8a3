#!/usr/bin/env bash
# Create .venv-lmdeploy: LMDeploy's PyTorch engine (envs/lmdeploy-gpu.txt, installed without
# dependencies) in a virtualenv that uses the machine's own torch and transformers. Run from the
# repository root on the GPU machine. With a folder argument, installs from the wheels in it
# (machines without a package index).
#   envs/setup-lmdeploy-gpu.sh [WHEEL_FOLDER]
set -euo pipefail

VENV=.venv-lmdeploy
PINS=envs/lmdeploy-gpu.txt
[ -f "$PINS" ] || { echo "setup-lmdeploy-gpu: run from the repository root" >&2; exit 1; }
source=(-r "$PINS")
if [ $# -ge 1 ]; then
    [ -d "$1" ] || { echo "setup-lmdeploy-gpu: no wheel folder at '$1'" >&2; exit 1; }
    source=(--no-index --find-links "$1" -r "$PINS")
fi

python3 -m venv --clear --system-site-packages "$VENV"
# --system-site-packages shows the base interpreter's packages; where python3 is itself a venv
# (the one that holds the machine's torch), that is not where torch is: a .pth adds its folders.
purelib=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
python3 -c 'import site; print("\n".join(site.getsitepackages()))' > "$purelib/base_site.pth"
# An empty PYTHONPATH: pip counts a package it sees there (the pipeline's own, say) as installed
# and skips it, and the engine, started without that path, would then miss it.
PYTHONPATH= "$VENV/bin/pip" install --quiet --no-deps "${source[@]}"
PYTHONPATH= "$VENV/bin/python" -c '
import lmdeploy, torch, transformers
print(f"setup-lmdeploy-gpu: lmdeploy {lmdeploy.__version__} on torch {torch.__version__}, "
      f"transformers {transformers.__version__}")'
