"""Methods on texts: `Embed` turns a frozen embedder into a scikit-learn transformer (texts → vectors,
stream mode), so any vectors method reads texts as `make_pipeline(Embed(embedder), method)`;
`TextClassifier` checks text inputs once for every method and delegates to it."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

from tart.data.labels import sorted_labels


class Embed(TransformerMixin, BaseEstimator):
    def __init__(self, embedder):
        self.embedder = embedder  # an Embedder (tart.lm.embedder); nothing is learned

    def fit(self, texts, y=None):
        return self

    def transform(self, texts) -> np.ndarray:
        return np.asarray(self.embedder.embed(list(texts)), dtype=np.float32)


class TextClassifier(ClassifierMixin, BaseEstimator):
    """`estimator` (any method built for texts) behind one set of input checks."""

    def __init__(self, estimator):
        self.estimator = estimator

    @staticmethod
    def _texts(texts) -> list[str]:
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise ValueError("expected a list of texts (str)")
        return texts

    def fit(self, texts, labels):
        texts, labels = self._texts(texts), list(labels)
        if not texts or len(texts) != len(labels):
            raise ValueError(f"need as many labels as texts, and at least one: {len(texts)} vs {len(labels)}")
        if len(set(labels)) < 2:
            raise ValueError(f"need at least 2 distinct labels to classify, got only {sorted_labels(labels)}")
        self.estimator_ = self.estimator.fit(texts, labels)
        self.classes_ = np.asarray(self.estimator_.classes_)
        return self

    def predict_proba(self, texts) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(self._texts(texts)), dtype=np.float64)

    def predict(self, texts) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(texts), axis=1)]
