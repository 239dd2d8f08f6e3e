#!/usr/bin/env bash
# Rebuild the result JSONs the README quotes, under results/ (plots: `tart evaluate --plot`, not kept here):
#   results/text/<embedder>/<dataset>.json      every bundled dataset, k = 16,32,64, 5 seeds,
#                                                tart / logreg / centroid / icl (icl: causal LMs only)
#   results/modes/<embedder>/<dataset>-<mode>.json   stream / vanilla / loo at k = 32 (SmolLM2)
#   $RESULTS/vectors/<dataset>.json              scikit-learn's digits, digit pairs, breast cancer, wine
# then prints the Markdown tables (scripts/summarize_results.py) into results/SUMMARY.md.
#
#   results/layers/<embedder>/<dataset>-layer<L>.json   the text runs, pooling hidden layer L (LAYERS)
#   results/vanilla/<embedder>/<dataset>.json   the text runs with vanilla embeddings (MODE_EMBEDDERS)
# Usage: scripts/run_evaluations.sh [text|icl|modes|vectors|layers|vanilla|summary|all]   (default: all)
# Environment: CHECKPOINT (default tart-compact), SEEDS (5), KS (16,32,64), TEST_SIZE (200),
#   EMBEDDERS ("smollm2-135m minilm-l6"), THREADS (torch threads; 1 is faster while another job
#   keeps the CPU busy), SKIP_EXISTING=1 to keep JSONs that are already there, RESULTS (output
#   folder, default results), TART (the command, default `tart`; `python -m tart.cli` also works).
# Every method, embedder and k in one table: `tart compare` (results/compare/).
# Rough cost on a free 2-core CPU: vectors minutes; text with minilm-l6 well under an hour; text with
# smollm2-135m is dominated by icl (each run scores test_size x classes prompts of k examples), hours;
# modes: leave-one-out embeds k prompts of k-1 examples per task.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

WHAT=${1:-all}
RESULTS=${RESULTS:-results}
TART=${TART:-tart}
CHECKPOINT=${CHECKPOINT:-tart-compact}
SEEDS=${SEEDS:-5}
KS=${KS:-16,32,64}
TEST_SIZE=${TEST_SIZE:-100}
EMBEDDERS=${EMBEDDERS:-"smollm2-135m minilm-l6"}
# vanilla / loo put k examples in one sequence: MiniLM's 512 positions do not hold 32 glosses
MODE_EMBEDDERS=${MODE_EMBEDDERS:-"smollm2-135m"}
TEXT_DATASETS=${TEXT_DATASETS:-"wordnet-animal-food wordnet-act-state wordnet-artifact-person
  wordnet-plant-communication fortunes-computers-politics opinion-sentiment wordnet-6way fortunes-4way"}
MODE_DATASETS=${MODE_DATASETS:-"wordnet-animal-food wordnet-act-state"}
MODE_SEEDS=${MODE_SEEDS:-2}  # leave-one-out embeds k prompts of k-1 examples per run
VECTOR_DATASETS=${VECTOR_DATASETS:-"sklearn:breast_cancer sklearn:digits-pairs sklearn:digits-3-8 sklearn:digits sklearn:wine"}
ICL_EMBEDDER=${ICL_EMBEDDER:-smollm2-135m}
LAYER_EMBEDDERS=${LAYER_EMBEDDERS:-smollm2-135m}
LAYERS=${LAYERS:-16}
ICL_SEEDS=${ICL_SEEDS:-3}
COMMON=(--checkpoint "$CHECKPOINT" --test-size "$TEST_SIZE" --quiet)
if [ -n "${THREADS:-}" ]; then COMMON+=(--threads "$THREADS"); fi

run() {  # run OUT.json ARGS...: one `tart evaluate`, skipped if OUT exists and SKIP_EXISTING=1
  local out=$1; shift
  if [ "${SKIP_EXISTING:-0}" = 1 ] && [ -s "$out" ]; then echo "keep $out"; return; fi
  mkdir -p "$(dirname "$out")"
  echo "== tart evaluate $* -> $out"
  $TART evaluate "$@" "${COMMON[@]}" --seeds "$SEEDS" --json "$out" || FAILED+=("$out")
}
FAILED=()

text() {
  for emb in $EMBEDDERS; do
    for ds in $TEXT_DATASETS; do
      run "$RESULTS/text/$emb/$ds.json" --data "$ds" --embedder "$emb" --k "$KS" \
        --methods tart,logreg,centroid
    done
  done
}

# In-context prompting costs minutes per run on this CPU, so it has its own, smaller run: the first
# ICL_SEEDS seeds, whose splits are the same as those of the text runs above (same seed, same test size).
icl() {
  local SEEDS=$ICL_SEEDS
  for ds in $TEXT_DATASETS; do
    run "$RESULTS/text/$ICL_EMBEDDER/$ds-icl.json" --data "$ds" --embedder "$ICL_EMBEDDER" --k "$KS" \
      --methods icl
  done
}

modes() {
  local SEEDS=$MODE_SEEDS
  for emb in $MODE_EMBEDDERS; do
    for ds in $MODE_DATASETS; do
      for mode in stream vanilla loo; do
        run "$RESULTS/modes/$emb/$ds-$mode.json" --data "$ds" --embedder "$emb" --k 32 \
          --embedding-mode "$mode" --methods tart,logreg,centroid
      done
    done
  done
}

vectors() {
  for ds in $VECTOR_DATASETS; do
    run "$RESULTS/vectors/${ds#sklearn:}.json" --data "$ds" --k "$KS" --methods tart,logreg,centroid
  done
}

# Which hidden layer to pool: the same runs as `text`, at each of LAYERS (same seeds, same splits).
layers() {
  for emb in $LAYER_EMBEDDERS; do
    for layer in $LAYERS; do
      for ds in $TEXT_DATASETS; do
        run "$RESULTS/layers/$emb/$ds-layer$layer.json" --data "$ds" --embedder "$emb" --k "$KS" \
          --methods tart,logreg,centroid --layer "$layer"
      done
    done
  done
}

# Vanilla embeddings (each support set embedded as one prompt, queries read after it) for every
# dataset, the same seeds and splits as `text`: does the mode that helped TART most in `modes` hold up?
vanilla() {
  for emb in $MODE_EMBEDDERS; do
    for ds in $TEXT_DATASETS; do
      run "$RESULTS/vanilla/$emb/$ds.json" --data "$ds" --embedder "$emb" --k "$KS" \
        --embedding-mode vanilla --methods tart,logreg,centroid
    done
  done
}

summary() {
  python scripts/summarize_results.py "$RESULTS" | tee "$RESULTS/SUMMARY.md"
}

case "$WHAT" in
  text) text ;;
  icl) icl ;;
  modes) modes ;;
  vectors) vectors ;;
  layers) layers ;;
  vanilla) vanilla ;;
  summary) summary ;;
  all) vectors; text; icl; modes; summary ;;
  *) echo "usage: $0 [text|icl|modes|vectors|layers|vanilla|summary|all]" >&2; exit 2 ;;
esac
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
