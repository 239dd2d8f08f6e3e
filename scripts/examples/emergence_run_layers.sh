#!/usr/bin/env bash
# Embedding-layer comparison for TART: `tart evaluate --layer L` on two bundled binary datasets,
# k = 16, 32, 5 seeds, 100 test texts per seed. Usage: bash scripts/examples/emergence_run_layers.sh L [L ...]
# (layer L pools hidden_states[L]: 1..29 = output of block L-1 before the final norm, -1 = the last, normed)
set -euo pipefail
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
out=results/examples/emergence/layers
mkdir -p "$out"
for layer in "$@"; do
  for data in wordnet-act-state opinion-sentiment; do
    tart evaluate --data "$data" --methods tart,logreg --k 16,32 --seeds 5 --test-size 100 \
      --layer "$layer" --threads 1 --quiet --json "$out/${data}_layer${layer}.json" > /dev/null
    echo "done $data layer $layer"
  done
done
