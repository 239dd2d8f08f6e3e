"""The head's half of a request: support vectors + their labels + query vectors -> predictions.

Labels are any strings; the classifier sees class indices in sorted label order, and each
probability column is mapped back to its label text here. `fit` depends only on the examples, so a
registered task's fitted classifier is kept in memory (`FittedCache`) and reused by every request.
"""
from __future__ import annotations

from collections import OrderedDict
from threading import Lock

import numpy as np


def fit(head, support: np.ndarray, labels: list[str], n_permutations: int, multiclass: str, projection: str,
        query_batch_size: int = 32):
    """A TartClassifier fitted on vectors (the embedder already ran) and its label texts by column."""
    from tart.classifier import TartClassifier

    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    clf = TartClassifier(head=head, embedder=None, random_state=0, n_permutations=n_permutations,
                         multiclass=multiclass, fit_projection_on=projection, query_batch_size=query_batch_size)
    clf.fit(support, [index[y] for y in labels])
    names = [classes[int(c)] for c in clf.classes_]
    return clf, names


def predict(fitted, queries: np.ndarray, cancel=None, batch: int | None = None) -> list[tuple[str, dict[str, float]]]:
    """(label, {label: probability}) for each query. With `batch`, queries go `batch` at a time and
    `cancel` (a threading.Event) is checked before each batch: a cancelled request stops there.
    Queries never see each other, so batching changes no answer, unless the projection is fitted on
    the queries too (then pass batch=None)."""
    from tart.serving.headpool import Cancelled

    clf, names = fitted
    step = batch or len(queries)
    parts = []
    for start in range(0, len(queries), step):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        parts.append(clf.predict_proba(queries[start:start + step]))
    proba = np.nan_to_num(np.concatenate(parts), nan=0.0)
    return [(names[int(np.argmax(row))], {c: float(p) for c, p in zip(names, row)}) for row in proba]


class FittedCache:
    """Fitted classifiers of registered tasks, by (task id, options), least recently used dropped."""

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def drop_task(self, task_id: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == task_id]:
                del self._items[key]
