"""TART vs ICL vs the probe on the same seeds: results/text/smollm2-135m ran ICL on 3 seeds and the
others on 5 (seeds 0..4, the same splits), so average every method over ICL's seeds only.

    python scripts/tart_vs_icl_same_seeds.py   # writes results/text/tart-vs-icl-same-seeds.json
"""
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent / "results" / "text" / "smollm2-135m"
by_dataset: dict = {}
for path in sorted(ROOT.glob("*.json")):
    report = json.loads(path.read_text())
    by_dataset.setdefault(report["dataset"], {}).update({(r["method"], r["k"]): r["accs"] for r in report["results"]})
rows, datasets = {}, []
for name, res in by_dataset.items():
    if ("icl", 16) not in res:
        continue
    datasets.append(name)
    for k in (16, 32, 64):
        seeds = len(res[("icl", k)])  # ICL ran seeds 0 .. seeds-1; the others' accs list seeds 0 .. 4
        for method in ("tart", "logreg", "icl"):
            rows.setdefault(method, {}).setdefault(str(k), []).append(float(np.mean(res[(method, k)][:seeds])))
out = {"source": str(ROOT.relative_to(ROOT.parents[2])), "datasets": datasets, "seeds": [0, 1, 2],
       "mean_accuracy": {m: {k: round(float(np.mean(v)), 4) for k, v in ks.items()} for m, ks in rows.items()},
       "note": "ICL here predates the query-tokenisation fix (see results/compare for the fixed ICL)"}
(ROOT.parent / "tart-vs-icl-same-seeds.json").write_text(json.dumps(out, indent=2) + "\n")
print(json.dumps(out["mean_accuracy"]))
