"""scripts/spreading_gate.py: the per-query gate between a head's answer and label spreading."""
import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("spreading_gate", ROOT / "scripts" / "spreading_gate.py")
spreading_gate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(spreading_gate)


def episode(rng, k, spread_right_when_sure: bool) -> dict:
    """60 queries, 3 classes: the head is right on half; spreading is right, and sure, on the other half."""
    truth = rng.integers(0, 3, 60)
    head = np.full((60, 3), np.log(0.2))
    spread = np.full((60, 3), np.log(0.3))
    for i, t in enumerate(truth):
        if i % 2:
            head[i, t] = np.log(0.6)
            spread[i, (t + 1) % 3] = np.log(0.4)  # unsure and wrong
        else:
            head[i, (t + 1) % 3] = np.log(0.6)
            spread[i, t if spread_right_when_sure else (t + 2) % 3] = np.log(0.9)
    return {"task": "t", "embedder": "none", "k": k, "head": head, "spread": spread, "truth": truth}


def test_gate_learns_to_trust_spreading_where_it_is_sure():
    rng = np.random.default_rng(0)
    train = [episode(rng, k, True) for k in (8, 16, 32, 64)]
    w, b = spreading_gate.fit_gate(train, start=0.4)
    test = episode(rng, 16, True)
    gate = 1 / (1 + np.exp(-(spreading_gate.features(test) @ w + b)))
    assert spreading_gate.accuracy(test, 0.4) < 0.6  # the fixed share follows the head's sure half only
    assert spreading_gate.accuracy(test, gate) > 0.95
    assert spreading_gate.accuracy(test, 0.0) == 0.5 and spreading_gate.accuracy(test, 1.0) == 0.5
