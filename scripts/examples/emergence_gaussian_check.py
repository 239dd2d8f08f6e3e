"""MINE on correlated Gaussians with known information: I = -d/2 log(1 - rho^2) nats.

    OMP_NUM_THREADS=1 python scripts/examples/emergence_gaussian_check.py   # writes gaussian_check.json

The settings of the unit tests (d = 2: 10,000 samples, 1,000 steps, batch 512) and a harder d = 4,
three seeds each; x ~ N(0, I_d), z = rho x + sqrt(1 - rho^2) e.
"""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "results" / "examples" / "emergence"  # where the outputs live

import numpy as np
import torch

from tart.analysis.emergence import mine_estimate

torch.set_num_threads(1)
rows = []
for d in (2, 4):
    for rho in (0.0, 0.5, 0.9):
        truth = -0.5 * d * np.log(1 - rho ** 2)
        for seed in range(3):
            rng = np.random.default_rng(seed)
            x = rng.standard_normal((10_000, d))
            z = rho * x + np.sqrt(1 - rho ** 2) * rng.standard_normal((10_000, d))
            est = mine_estimate(x, z, steps=1000, batch_size=512, seed=seed)
            rows.append({"d": d, "rho": rho, "seed": seed, "true_mi": truth, "mine": est, "error": est - truth,
                         "relative_error": (est - truth) / truth if truth else None})
            print(rows[-1])
settings = {"n": 10_000, "steps": 1000, "batch_size": 512, "hidden": 64, "ema_rate": 0.01, "holdout": 0.2}
(OUT / "gaussian_check.json").write_text(json.dumps({"settings": settings, "results": rows}, indent=2))
