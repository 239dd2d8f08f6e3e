#!/usr/bin/env bash
# Rebuild results/examples/slices/: `tart evaluate --predictions` with SmolLM2-135M and MiniLM-L6 on two bundled
# datasets (k = 16, 5 seeds, 200 test texts per seed; tart / logreg / centroid), then `tart analyze
# slices` over the six models of each dataset (rule slices: length terciles, negation, number,
# question, uppercase, label). Predictions (~0.5 MB per file) go to runs/slices/ (git-ignored).
# Run with the venv active (`. .venv/bin/activate`). About 6 minutes on the 2-core CPU at 1 thread.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
OUT=results/examples/slices
PRED=runs/slices
mkdir -p "$PRED"
for data in fortunes-computers-politics wordnet-6way; do
  for emb in smollm2-135m minilm-l6; do
    tart evaluate --data "$data" --embedder "$emb" --methods tart,logreg,centroid --k 16 --seeds 5 \
      --test-size 200 --threads 1 --quiet --json "$OUT/evaluate-$data-$emb.json" \
      --predictions "$PRED/$data-$emb.jsonl"
  done
  tart analyze slices --predictions "smollm2=$PRED/$data-smollm2-135m.jsonl" "minilm=$PRED/$data-minilm-l6.jsonl" \
    --json "$OUT/slices-$data.json" --plot "$OUT/slices-$data.png"
done
