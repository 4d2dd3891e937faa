#!/usr/bin/env bash
# Installs sd-core, every plugin and the test tools into ./.venv (created if missing).
#
# PyTorch: if the environment already has torch (for example your own CUDA build), it is kept.
# Otherwise a machine with an NVIDIA GPU (nvidia-smi present) gets the default build, and a
# machine without one gets the CPU build: first from pip's local wheel folders (find-links),
# else from PyTorch's CPU index. pyproject.toml itself accepts any torch>=2.1.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_VERSION=${SD_TORCH_VERSION:-2.13.0}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
py=.venv/bin/python
pip() { "$py" -m pip --disable-pip-version-check "$@"; }

if ! "$py" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    pip install -q "torch==${TORCH_VERSION}"
  else
    # "+cpu" is the CPU build's local version: found in pip's find-links folders where a machine
    # keeps one, else on PyTorch's CPU index (its dependencies still come from the usual index).
    pip install -q "torch==${TORCH_VERSION}+cpu" 2>/dev/null \
      || pip install -q "torch==${TORCH_VERSION}+cpu" --extra-index-url https://download.pytorch.org/whl/cpu
  fi
fi
"$py" -W ignore -c "import torch" || { echo "install.sh: torch did not install" >&2; exit 1; }

plugins=()
for p in plugins/*/; do plugins+=(-e "$p"); done
pip install -q -e ".[test]" "${plugins[@]}"
"$py" -c "import sd_core" && echo "install.sh: sd installed in .venv (torch $("$py" -c 'import torch; print(torch.__version__)'))"
