"""The service's prediction step on a planted task: vectors whose label is known (well separated
clusters), labels whose sorted order differs from their order of appearance. A wrong label mapping
(reversed, by first appearance, off by one) gives wrong answers here, not just odd shapes."""
from __future__ import annotations

import numpy as np
import pytest

from tart.serving.predict import FittedCache, fit, predict
from tart.checkpoint_io import CHECKPOINTS

SHIPPED = CHECKPOINTS / "tart-compact"
pytestmark = pytest.mark.skipif(not (SHIPPED / "config.json").is_file(), reason="no shipped head")


def planted(labels, k_per_class=8, q_per_class=6, dim=64, seed=0):
    """Clusters at distinct corners, tight noise: each point's label is beyond doubt."""
    rng = np.random.default_rng(seed)
    centres = {y: 6.0 * rng.normal(size=dim) for y in labels}
    support, support_labels, queries, query_labels = [], [], [], []
    for y in labels:  # examples grouped by label, in the order given (not sorted)
        support += [centres[y] + rng.normal(size=dim) for _ in range(k_per_class)]
        support_labels += [y] * k_per_class
    for i in range(q_per_class):
        for y in labels[::-1]:
            queries.append(centres[y] + rng.normal(size=dim))
            query_labels.append(y)
    return (np.array(support, np.float32), support_labels, np.array(queries, np.float32), query_labels)


@pytest.mark.parametrize("labels,multiclass", [(["zebra", "apple"], "ovr"),
                                               (["b-second", "a-first"], "ovr"),
                                               (["zz", "mm", "aa"], "ovr"),
                                               (["zz", "mm", "aa", "0"], "ovo")])
def test_planted_task_every_label_right(labels, multiclass):
    support, support_labels, queries, truth = planted(labels)
    fitted = fit(str(SHIPPED), support, support_labels, n_permutations=2, multiclass=multiclass,
                 projection="support")
    got = predict(fitted, queries)
    assert [p.label for p in got] == truth
    for p, y in zip(got, truth):
        assert set(p.scores) == set(labels)
        assert p.scores[y] == max(p.scores.values()) and p.scores[y] > 1.5 / len(labels)
        assert abs(sum(p.scores.values()) - 1) < 1e-5


def test_fitted_cache_is_lru_and_drops_a_task():
    cache = FittedCache(size=2)
    cache.put(("t1", "a"), 1)
    cache.put(("t2", "a"), 2)
    assert cache.get(("t1", "a")) == 1  # t1 is now the most recent
    cache.put(("t3", "a"), 3)           # drops t2
    assert cache.get(("t2", "a")) is None and cache.get(("t3", "a")) == 3
    cache.drop_task("t1")
    assert cache.get(("t1", "a")) is None
    assert (cache.hits, cache.misses) == (2, 2)
