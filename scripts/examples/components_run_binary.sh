#!/usr/bin/env bash
# Component reweighting vs TART and the probe on the 6 bundled binary datasets, k = 16, 5 seeds,
# 100 test texts (the same splits for every method within a dataset). Writes binary/<dataset>.json.
set -euo pipefail
cd "$(dirname "$0")/../../results/examples/components"  # the outputs live there
export HF_HUB_OFFLINE=1
mkdir -p binary
for ds in wordnet-animal-food wordnet-act-state wordnet-artifact-person wordnet-plant-communication \
          fortunes-computers-politics opinion-sentiment; do
  tart evaluate --data "$ds" --methods tart,logreg,comprw --k 16 --seeds 5 --test-size 100 \
    --threads "${THREADS:-2}" --quiet --json "binary/$ds.json"
done
python - <<'PY'
import json, pathlib
rows = [json.loads(p.read_text()) for p in sorted(pathlib.Path("binary").glob("*.json"))]
means = {m: sum(r["mean"] for rep in rows for r in rep["results"] if r["method"] == m) / len(rows)
         for m in ("tart", "logreg", "comprw")}
print({m: round(v, 3) for m, v in means.items()}, "over", len(rows), "datasets")
PY
