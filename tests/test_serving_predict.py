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
    assert [label for label, _ in got] == truth
    for (_, scores), y in zip(got, truth):
        assert set(scores) == set(labels)
        assert scores[y] == max(scores.values()) and scores[y] > 1.5 / len(labels)
        assert abs(sum(scores.values()) - 1) < 1e-5


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


# ---- the cost model: its count of head sequences is the classifier's own ----

@pytest.mark.parametrize("counts,multiclass,perms,n_queries", [((8, 8), "ovr", 4, 5), ((40, 60), "ovr", 2, 70),
                                                             ((3, 5, 9), "ovr", 3, 1), ((3, 5, 70, 2), "ovo", 2, 33),
                                                             ((100, 100, 100), "ovo", 1, 64)])
def test_head_cost_matches_the_classifier(counts, multiclass, perms, n_queries):
    from tart.serving.cost import QUERY_BATCH, head_cost

    labels = [f"c{i}" for i, n in enumerate(counts) for _ in range(n)]
    fitted = fit(str(SHIPPED), np.zeros((len(labels), 8), np.float32), labels, n_permutations=perms,
                 multiclass=multiclass, projection="support")
    clf = fitted[0]
    seqs = clf._sequences(clf._binary_problems())
    cost = head_cost(labels, n_queries, perms, multiclass, clf.head_.config.max_examples)
    assert cost.sequences == len(seqs)
    assert cost.context == max(len(s[1]) for s in seqs)
    batches = -(-n_queries // QUERY_BATCH)
    assert cost.tokens == len(seqs) * batches * (cost.context + min(QUERY_BATCH, n_queries))


def test_over_budget_names_the_limit():
    from tart.serving.cost import HeadCost, over_budget

    assert over_budget(100, HeadCost(4, 16, 200), 100, 200) is None
    assert "max_embed_tokens=100" in over_budget(101, None, 100, 200)
    message = over_budget(10, HeadCost(4, 16, 201), 100, 200)
    assert "max_head_tokens=200" in message and "201 head tokens" in message


def test_token_counter_counts_and_flags_long_texts():
    from tart.serving.cost import TokenCounter

    counter = TokenCounter("minilm-l6", max_length=8)
    counts = counter.count(["a cat", "word " * 20])
    assert counts[0] == 2 and counts[1] == 20
    assert counter.specials == 2  # [CLS] ... [SEP]
    assert counter.embed_tokens(counts) == (2 + 2) + (8 + 2)
