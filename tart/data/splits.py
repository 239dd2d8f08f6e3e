"""Class-balanced support and test sets, drawn from a seed so that they can be drawn again."""
from __future__ import annotations

import random

import numpy as np

from tart.data.labels import LabelledTexts, sorted_labels


def balanced_split(data: LabelledTexts, k: int, seed: int,
                   test_size: int | None = None) -> tuple[LabelledTexts, LabelledTexts]:
    """A class-balanced support set of k examples, and a test set from the rest (`balanced_indices`)."""
    support, test = balanced_indices(data.labels, k, seed, test_size)
    return data.subset(support), data.subset(test)


def balanced_indices(labels, k: int, seed: int, test_size: int | None = None,
                     sampler: str = "python") -> tuple[list[int], list[int]]:
    """Positions in `labels` of a class-balanced support set of k examples and of a test set from the rest.

    Each class gets k // n_classes examples; the k % n_classes left over go one each to
    classes picked at random (seeded). The support set is shuffled so the classes are
    interleaved. The test set is every other example (in the original order), or a seeded
    random sample of test_size of them (in the original order too).

    `sampler` names the seeded draws, each kept so that the splits of reports made with it can be drawn
    again: "python" (`random.Random(seed)`: `tart evaluate`, the analyses) or "numpy"
    (`numpy.random.default_rng(seed)`, which shuffles the support after drawing the test set: the dev suite).
    """
    if sampler not in ("python", "numpy"):
        raise ValueError(f"sampler must be 'python' or 'numpy', got {sampler!r}")
    classes = sorted_labels(labels)
    if k < len(classes):
        raise ValueError(f"k={k} is smaller than the number of classes ({len(classes)}): "
                         "every class needs at least one support example")
    rng = np.random.default_rng(seed) if sampler == "numpy" else random.Random(seed)

    def sample(items, n) -> list:
        return rng.choice(items, n, replace=False).tolist() if sampler == "numpy" else rng.sample(items, n)

    per_class = [k // len(classes)] * len(classes)
    for c in sample(range(len(classes)), k % len(classes)):
        per_class[c] += 1
    support = []
    for c, n in zip(classes, per_class):
        members = [i for i, label in enumerate(labels) if label == c]
        if len(members) < n:
            raise ValueError(f"class {c!r} has {len(members)} examples, fewer than the {n} needed for k={k}")
        support += sample(members, n)
    if sampler == "python":
        rng.shuffle(support)

    chosen = set(support)
    test = [i for i in range(len(labels)) if i not in chosen]
    if test_size is not None:
        if not 0 < test_size <= len(test):
            raise ValueError(f"test_size={test_size} must be between 1 and the "
                             f"{len(test)} examples left after the support set")
        test = sorted(sample(test, test_size))
    if sampler == "numpy":
        support = rng.permutation(support).tolist()
    return support, test
