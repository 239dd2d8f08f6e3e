"""scripts/base_calibration.py: per-task log-loss and the reliability bins agree with each other, for a head
and for a suite baseline on the same splits (the suite's vector tasks: no embedder needed)."""
import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("base_calibration", ROOT / "scripts" / "base_calibration.py")
base_calibration = importlib.util.module_from_spec(spec)
spec.loader.exec_module(base_calibration)


def test_bins_hold_every_test_point_and_match_the_rows(tmp_path):
    for label, head, baseline in (("tart-base", "tart-base", None), ("probe,names=1", None, "probe,names=1")):
        rows, reliability = base_calibration.calibration(label, head, "none", ks=[16], seeds=[0], test_size=50,
                                                         baseline=baseline)
        assert [r["task"] for r in rows] == ["sklearn:digits", "sklearn:breast_cancer", "sklearn:wine", "sklearn:iris"]
        bins = reliability["bins"]
        assert sum(b["count"] for b in bins) == 50 * len(rows)
        assert all(b["low"] <= b["confidence"] <= b["high"] for b in bins)
        pooled = sum(b["count"] * b["accuracy"] for b in bins) / (50 * len(rows))
        assert np.isclose(pooled, np.mean([r["accuracy"] for r in rows]))  # equal test sizes: the same mean
        assert all(0 < r["nll"] < 5 for r in rows)
    base_calibration.plot_reliability([reliability], tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000
