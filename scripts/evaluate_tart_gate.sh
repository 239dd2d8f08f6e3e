#!/usr/bin/env bash
# tart-gate on the dev suite (issue 25), beside the methods of results/dev-suite/default-base-EMBEDDER.json (their
# rows reused where computed on the same vectors, else run again: ~5 min per embedder on one core): all 15 tasks,
# then the 11 text tasks with the paired gaps its model card reports (checkpoints/tart-gate/README.md).
#     bash scripts/evaluate_tart_gate.sh minilm-l6     (then smollm2-135m)
set -euo pipefail
emb=$1
H=tart:tart-gate
BASE="probe;centroid;centroid-raw;probe,names=1;centroid,names=1;nearest-name;base:side,names=1,pool=1;tart:tart-residual;tart:tart-residual,names=1;tart:tart-reader,names=1,pool=1;tart:tart-base;tart:tart-base,names=1;tart:tart-base,names=1,pool=1"
M="$BASE;$H;$H,names=1;$H,names=1,pool=1"
TEXT=$(python -c "from tart.evaluate.dev_suite import TEXT_TASKS; print(','.join(TEXT_TASKS))")
python -m tart.evaluate.dev_suite --ks 0,8,16,32,64 --embedders $emb --methods "$M" --reuse results/dev-suite/default-base-$emb.json \
  --json results/dev-suite/tart-gate-$emb.json --per-task results/dev-suite/tart-gate-$emb.md
G="$H,names=1,pool=1"
python -m tart.evaluate.dev_suite --ks 0,8,16,32,64 --embedders $emb --methods "$M" --tasks "$TEXT" --reuse results/dev-suite/tart-gate-$emb.json \
  --gap "$G;tart:tart-base,names=1,pool=1" --gap "$G;base:side,names=1,pool=1" --gap "$G;probe" --gap "$G;centroid" \
  --gap "$G;probe,names=1" --gap "$G;centroid,names=1" --gap "$G;nearest-name" --gap "$H;tart:tart-base" --gap "$H;tart:tart-residual" \
  --gap "$H,names=1;nearest-name" --gap "$H,names=1;tart:tart-base,names=1" \
  --json results/dev-suite/tart-gate-text-$emb.json --per-task results/dev-suite/tart-gate-text-$emb.md
