#!/usr/bin/env bash
# Set up cope-local in ./.venv with the training and test extras. Works offline against the
# package registries only; nothing is downloaded at run time afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an open range would pull a multi-GB CUDA build onto a CPU machine.
# Here `torch==2.13.0` is the CPU wheel; on a Linux GPU machine PyPI's wheel of the same
# version is the CUDA build. Override with COPE_TORCH (e.g. a ROCm or newer CUDA wheel).
.venv/bin/python -m pip install -q "${COPE_TORCH:-torch==2.13.0}"
# llama-cpp-python builds llama.cpp from source the first time (~9 min on 2 cores; pip caches it).
# COPE_EXTRAS adds optional parts, e.g. COPE_EXTRAS=train,test,cluster for `cope eval --ray`.
.venv/bin/python -m pip install -q -e ".[${COPE_EXTRAS:-train,test}]"
echo "cope-local is installed: .venv/bin/cope --help"
