"""Classifiers fitted on vectors (embeddings of any modality): the probe and nearest centroid.

- `LogRegProbe`: logistic regression on standardised vectors; C picked by stratified
  cross-validation on the support set when every class has at least 3 examples, else C = 1.
- `CentroidClassifier`: nearest class mean by cosine similarity, on features standardised on the
  support set (`standardize=True`, the default) or on the raw vectors centred on the support mean
  (`standardize=False`: LM embeddings share a large common direction that swamps cosine).
"""
from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tart.data.labels import sorted_labels

LOGREG_CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)


def softmax(scores) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so large scores cannot overflow."""
    z = np.asarray(scores, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def logistic_regression(y, Cs=LOGREG_CS, cv: int = 5, scoring="neg_log_loss", max_iter: int = 2000,
                        random_state: int | None = 0, shuffle: bool = True):
    """An unfitted logistic regression for support labels `y`: C by stratified CV over `Cs` (`cv` folds, at
    most the rarest class's count) when every class has at least 3 examples, else C = 1."""
    folds = min(cv, min(Counter(np.asarray(y).tolist()).values()))
    if folds < 3:  # at least 3 examples per class: every fold sees every class
        return LogisticRegression(C=1.0, max_iter=max_iter)
    splitter = StratifiedKFold(folds, shuffle=shuffle, random_state=random_state if shuffle else None)
    return LogisticRegressionCV(Cs=list(Cs), cv=splitter, scoring=scoring, max_iter=max_iter)


class LogRegProbe(ClassifierMixin, BaseEstimator):
    """Standardise, then logistic regression; C by `cv`-fold CV on the support set if it can."""

    def __init__(self, Cs=LOGREG_CS, cv: int = 5, random_state: int | None = 0, max_iter: int = 2000):
        self.Cs = Cs
        self.cv = cv
        self.random_state = random_state
        self.max_iter = max_iter

    def fit(self, X, y):
        y = np.asarray(y)
        self.classes_ = np.array(sorted_labels(y.tolist()))
        lr = logistic_regression(y, self.Cs, self.cv, max_iter=self.max_iter, random_state=self.random_state)
        self.model_ = make_pipeline(StandardScaler(), lr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", FutureWarning)  # sklearn's deprecation chatter
            self.model_.fit(np.asarray(X, dtype=np.float64), y)
        self.C_ = float(np.ravel(lr.C_)[0]) if isinstance(lr, LogisticRegressionCV) else lr.C
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.model_.predict_proba(np.asarray(X, dtype=np.float64))

    def predict(self, X) -> np.ndarray:
        return self.model_.predict(np.asarray(X, dtype=np.float64))


class CentroidClassifier(ClassifierMixin, BaseEstimator):
    """Nearest class mean by cosine similarity (see the module docstring).

    `predict_proba` is the softmax of the cosine similarities, p_c = exp(cos_c) / sum_j exp(cos_j)
    (temperature 1: close to uniform, but ranked as the prediction)."""

    def __init__(self, standardize: bool = True):
        self.standardize = standardize

    @staticmethod
    def _unit(X):
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)

    def fit(self, X, y):
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        self.classes_ = np.array(sorted_labels(y.tolist()))
        self.mean_ = X.mean(0)
        std = X.std(0) if self.standardize else np.ones(X.shape[1])
        self.scale_ = np.where(std > 1e-12, std, 1.0)  # constant features stay as they are
        Xc = self._unit((X - self.mean_) / self.scale_)
        self.centroids_ = self._unit(np.stack([Xc[y == c].mean(0) for c in self.classes_]))
        return self

    def decision_function(self, X) -> np.ndarray:
        return self._unit((np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_) @ self.centroids_.T

    def predict_proba(self, X) -> np.ndarray:
        return softmax(self.decision_function(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
