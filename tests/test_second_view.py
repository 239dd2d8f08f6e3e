"""scripts/second_view.py reads the suite's texts (dev_suite.task_texts) in the suite's order; its two views are unit parts."""
import importlib.util
from pathlib import Path

import numpy as np

from tart.evaluate import dev_suite

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("second_view", ROOT / "scripts" / "second_view.py")
second_view = importlib.util.module_from_spec(spec)
spec.loader.exec_module(second_view)


def test_texts_line_up_with_the_suite_vectors():
    task = "fortunes-4way"  # a bundled set (the user-text sets need their snapshots), subsampled by the suite
    X, _ = dev_suite.task_vectors(task, "minilm-l6")
    texts = dev_suite.task_texts(task).texts
    assert len(texts) == len(X)
    again = np.asarray(dev_suite._embedder("minilm-l6").embed(texts[:3] + texts[-3:]))
    np.testing.assert_allclose(again, np.concatenate([X[:3], X[-3:]]), atol=1e-4)


def test_two_views_are_unit_parts_side_by_side():
    a, b = np.array([[3.0, 4.0]]), np.array([[0.0, 2.0, 0.0]])
    np.testing.assert_allclose(second_view.both(a, b), [[0.6, 0.8, 0.0, 1.0, 0.0]])
