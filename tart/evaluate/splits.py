"""What `tart evaluate` runs on: a dataset (text or vectors) and, per seed, its support and test draws.

For each seed: a class-balanced pool of max(k) support examples and a held-out test set (a seeded
sample of at most `test_size` of the rest) are drawn once; for each k the support set is a balanced
k-subset of that pool, so every k and every method of a seed is scored on the same test set. The
draws depend only on the dataset and the seed, so every embedder sees the same splits too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tart.data.datasets import load_dataset
from tart.data.labels import LabelledTexts, sorted_labels
from tart.data.splits import balanced_split

SKLEARN_DATASETS = ("digits", "digits-pairs", "digits-A-B (e.g. digits-3-8)", "breast_cancer", "wine", "iris")


@dataclass
class EvalData:
    name: str
    labels: list
    texts: list[str] | None = None     # text data
    vectors: np.ndarray | None = None  # vector data (any modality)
    pairs: bool = False                # digits-pairs: each seed draws its own pair of classes

    def for_seed(self, seed: int) -> tuple[LabelledTexts, str | None]:
        """The examples a seed draws from, as a LabelledTexts whose 'texts' are row indices."""
        rows = range(len(self.labels))
        note = None
        if self.pairs:
            pair = sorted(np.random.default_rng(seed).choice(sorted_labels(self.labels), 2, replace=False).tolist())
            rows = [i for i in rows if self.labels[i] in pair]
            note = f"seed {seed}: digits {pair[0]} vs {pair[1]}"
        return LabelledTexts(self.name, [str(i) for i in rows], [self.labels[i] for i in rows]), note


def sklearn_table(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One of scikit-learn's bundled tables (digits, breast_cancer, wine, iris): float32 vectors, integer
    targets and the class names."""
    from sklearn import datasets

    loaders = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer,
               "wine": datasets.load_wine, "iris": datasets.load_iris}
    if name not in loaders:
        raise ValueError(f"unknown dataset {'sklearn:' + name!r}; vector datasets are sklearn:"
                         + ", sklearn:".join(SKLEARN_DATASETS))
    bunch = loaders[name]()
    return bunch.data.astype(np.float32), bunch.target, [str(n) for n in bunch.target_names]


def load_eval_data(spec: str, text_column: str = "text", label_column: str = "label") -> EvalData:
    """A bundled dataset name or .csv/.jsonl/.json file (text), or "sklearn:NAME" (vectors)."""
    if not str(spec).startswith("sklearn:"):
        data = load_dataset(spec, text_column, label_column)
        return EvalData(data.name, data.labels, texts=data.texts)
    name = spec.split(":", 1)[1]
    if not name.startswith("digits"):
        name = name.replace("-", "_")  # breast-cancer or breast_cancer
    base = "digits" if name.startswith("digits") else name
    X, y, names = sklearn_table(base)
    pairs = name == "digits-pairs"
    if base == "digits" and name not in ("digits", "digits-pairs"):
        parts = name.split("-")[1:]
        if len(parts) != 2 or not all(p.isdigit() and len(p) == 1 for p in parts) or parts[0] == parts[1]:
            raise ValueError(f"unknown dataset {spec!r}: digit pairs are named like sklearn:digits-3-8")
        keep = np.isin(y, [int(p) for p in parts])
        X, y = X[keep], y[keep]
    return EvalData(spec, [names[i] for i in y], vectors=X, pairs=pairs)


def draw(data: EvalData, ks, seed: int, test_size: int | None, notes: list):
    """Support indices per k and the test indices for one seed."""
    pool_data, note = data.for_seed(seed)
    if note:
        notes.append(note)
    available = len(pool_data) - max(ks)
    if test_size is not None and test_size > available:
        notes.append(f"seed {seed}: test set capped at the {available} examples left after k={max(ks)}")
        test_size = available
    pool, test = balanced_split(pool_data, max(ks), seed, test_size=test_size)
    supports = {k: [int(t) for t in balanced_split(pool, k, seed)[0].texts] for k in ks}
    return supports, [int(t) for t in test.texts]
