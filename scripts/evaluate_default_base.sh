#!/usr/bin/env bash
# The default head, tart-base, on the dev suite (issue 25) beside the fixed rules and the other heads: all 15 tasks,
# then the 11 text tasks with the paired gaps the README and its model card report (checkpoints/tart-base/README.md).
# Rows of an earlier report are reused where computed on the same vectors (--reuse), else run again (~25 min per
# embedder on one core).
#     bash scripts/evaluate_default_base.sh minilm-l6 [EARLIER_REPORT.json]     (then smollm2-135m)
set -euo pipefail
emb=$1
reuse=${2:-results/dev-suite/default-base-$emb.json}
M="probe;centroid;centroid-raw;probe,names=1;centroid,names=1;nearest-name;base:side,names=1,pool=1;tart:tart-residual;tart:tart-residual,names=1;tart:tart-reader,names=1,pool=1;tart:tart-base;tart:tart-base,names=1;tart:tart-base,names=1,pool=1"
TEXT=$(python -c "from tart.evaluate.dev_suite import TEXT_TASKS; print(','.join(TEXT_TASKS))")
python -m tart.evaluate.dev_suite --ks 0,8,16,32,64 --embedders $emb --methods "$M" --reuse $reuse \
  --json results/dev-suite/default-base-$emb.json --per-task results/dev-suite/default-base-$emb.md
D="tart:tart-base,names=1,pool=1"
python -m tart.evaluate.dev_suite --ks 0,8,16,32,64 --embedders $emb --methods "$M" --tasks "$TEXT" \
  --reuse results/dev-suite/default-base-$emb.json \
  --gap "$D;base:side,names=1,pool=1" --gap "$D;probe" --gap "$D;centroid" --gap "$D;probe,names=1" \
  --gap "$D;centroid,names=1" --gap "$D;nearest-name" --gap "$D;tart:tart-reader,names=1,pool=1" \
  --gap "tart:tart-base;tart:tart-residual" --gap "tart:tart-base,names=1;nearest-name" \
  --gap "tart:tart-base,names=1;tart:tart-residual,names=1" \
  --json results/dev-suite/default-base-text-$emb.json
