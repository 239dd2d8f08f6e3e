"""Why nearest centroid collapses at middle layers: share of the embeddings' centred variance held by
their 3 largest coordinates, per pooled layer (SmolLM2, 64 WordNet glosses). Writes outlier_coordinates.json.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python scripts/examples/emergence_outlier_coordinates.py
"""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "results" / "examples" / "emergence"  # where the outputs live

import numpy as np

from tart.data.datasets import load_dataset
from tart.lm.embedder import load_embedder

texts = load_dataset("wordnet-animal-food").texts[:64]
rows = []
for layer in (-1, 2, 12, 16, 24):
    X = load_embedder("smollm2-135m", layer=layer, progress=False).embed(texts)
    var = np.sort(X.var(0))[::-1]
    rows.append({"layer": layer, "top3_variance_share": round(float(var[:3].sum() / var.sum()), 4),
                 "max_abs": round(float(np.abs(X).max()), 1), "median_abs": round(float(np.median(np.abs(X))), 3)})
    print(rows[-1])
(OUT / "outlier_coordinates.json").write_text(json.dumps({"texts": len(texts), "layers": rows}, indent=2) + "\n")
