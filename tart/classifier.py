"""TartClassifier: few-shot classification with a frozen embedder and the reasoning head.

A scikit-learn estimator. `fit` only stores the support set (no gradient step); `predict_proba`
embeds the queries, projects support and queries into the head's input space, and runs the head on
every sequence with the queries in batches of `query_batch_size` (each batch one forward; queries
never see each other, so the batch size changes no answer).
- A multi-class head (n_classes label slots) reads up to that many classes natively
  (`multiclass="auto"` or `"native"`): see `tart.inference`, whose test-time ensemble of
  `n_permutations` members varies the support order, the classes' slots and (`sign_flips`) the signs
  of the projected features. Renaming the classes permutes the output columns, nothing else.
- Otherwise (a binary head, or more classes than slots): one-vs-rest (`"auto"`, `"ovr"`) or
  one-vs-one (`"ovo"`) binary problems, probabilities normalised; `n_permutations` random orders of
  the support set, each also run with its binary labels swapped (the head alone is not exactly
  symmetric: on breast cancer at k = 16, 6% of predictions flipped with the label names).
- Support sets longer than the head's context: split into near-equal chunks, averaged.
- `embedder_backend` runs a named embedder in torch, `onnx` or `onnx-int8` (ONNX Runtime, see
  tart.onnx_backend); None follows $TART_EMBED_BACKEND, else torch.
"""
from __future__ import annotations

import os
from itertools import combinations
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from tart.checkpoint_io import DEFAULT_HEAD, load_head
from tart.inference import native_proba, positive_probability, project_task
from tart.reasoning import TartReasoningModel

_HEADS: dict[str, TartReasoningModel] = {}


def _resolve_head(head) -> TartReasoningModel:
    if isinstance(head, TartReasoningModel):
        return head.eval()
    key = str(head)
    if key not in _HEADS:  # loaded once per process: clone() and cross-validation reuse it
        _HEADS[key] = load_head(head)
    return _HEADS[key]


def _resolve_embedder(embedder, backend=None):
    if embedder is None or not isinstance(embedder, (str, Path)):
        if backend is not None:
            raise ValueError(f"embedder_backend={backend!r} applies to an embedder given by name or folder, "
                             f"not to {type(embedder).__name__}")
        return embedder
    from tart.embeddings import load_embedder

    return load_embedder(str(embedder), **({"backend": backend} if backend else {}))


def _is_texts(X) -> bool:
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(isinstance(x, str) for x in X) or (
        isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "UO"
    )


def _unique_labels(y) -> np.ndarray:
    """Distinct labels, sorted where they can be. A plain numpy array when it holds every value
    exactly (scikit-learn's metrics want one); else an object array (mixed types, or strings that
    numpy would change, e.g. by dropping trailing NUL characters)."""
    seen = list(dict.fromkeys(y))
    try:
        seen = sorted(seen)
    except TypeError:  # mixed, unorderable labels keep their order of first appearance
        pass
    try:
        plain = np.array(seen)
    except ValueError:  # e.g. tuples beside scalars
        plain = None
    if plain is not None and plain.ndim == 1 and plain.dtype.kind in "biuU" and plain.tolist() == seen and \
            all(type(a) is type(b) for a, b in zip(plain.tolist(), seen)):
        return plain
    out = np.empty(len(seen), dtype=object)
    out[:] = seen
    return out


class TartClassifier(ClassifierMixin, BaseEstimator):
    # checked by scikit-learn when fit starts (InvalidParameterError is a ValueError)
    _parameter_constraints: dict = {
        "head": [str, os.PathLike, TartReasoningModel],
        "embedder": "no_validation",  # None, a short name or folder, or any object with .embed
        "embedder_backend": [None, StrOptions({"torch", "onnx", "onnx-int8"})],  # tart.onnx_backend.BACKENDS
        "embedding_mode": [StrOptions({"stream", "vanilla", "loo", "leave-one-out"})],
        "shrinkage": [Interval(Real, 0, 1, closed="both")],
        "standardize": ["boolean"],
        "fit_projection_on": [StrOptions({"support", "support+queries"})],
        "multiclass": [StrOptions({"auto", "native", "ovr", "ovo"})],
        "sign_flips": ["boolean"],
        "n_permutations": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "query_batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        head=DEFAULT_HEAD,
        embedder="smollm2-135m",
        embedding_mode: str = "stream",
        shrinkage: float = 0.5,
        standardize: bool = True,
        fit_projection_on: str = "support",
        multiclass: str = "auto",
        n_permutations: int = 4,
        sign_flips: bool = True,
        random_state: int | None = 0,
        query_batch_size: int = 128,
        embedder_backend: str | None = None,
    ):
        self.head = head
        self.embedder = embedder
        self.embedding_mode = embedding_mode
        self.shrinkage = shrinkage
        self.standardize = standardize
        self.fit_projection_on = fit_projection_on
        self.multiclass = multiclass
        self.n_permutations = n_permutations
        self.sign_flips = sign_flips
        self.random_state = random_state
        self.query_batch_size = query_batch_size
        self.embedder_backend = embedder_backend

    # -- fit ------------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        texts = _is_texts(X)
        if not texts:
            X = self._validate_vectors(X, reset=True)  # sets n_features_in_
        n = self._check_length(X, "X")
        y = self._check_targets(y)
        if len(y) != n:
            raise ValueError(f"X has {n} examples but y has {len(y)} labels")
        try:
            self.classes_ = _unique_labels(y)
        except TypeError as err:
            raise ValueError(f"labels must be hashable values: {err}") from err
        if len(self.classes_) < 2:
            raise ValueError(f"need at least 2 distinct labels to classify, got 1 class: {list(self.classes_)}")
        self.head_ = _resolve_head(self.head)
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        self.y_index_ = np.array([index[v] for v in y])
        # the embedder is loaded only for texts: vectors never pull in a language model
        self.embedder_ = _resolve_embedder(self.embedder, self.embedder_backend) if texts else None
        self.support_ = list(X) if texts else X
        if not texts:
            self.support_vectors_ = self.support_
        elif self.embedding_mode == "stream":
            self.support_vectors_ = self._embed(self.support_)
        else:  # vanilla / leave-one-out: support and queries are embedded together at predict time
            self.support_vectors_ = None
        if texts:
            self.n_features_in_ = None if self.support_vectors_ is None else self.support_vectors_.shape[1]
        return self

    def _check_targets(self, y) -> list:
        """The labels as a list. Numbers go through scikit-learn's target checks (continuous, NaN,
        infinite, 2-D); any other hashable values (strings, tuples, mixed) are kept exactly."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        try:
            arr = np.asarray(y)
        except ValueError:  # ragged, e.g. tuples beside scalars: plain hashable labels
            arr = None
        if arr is not None and arr.dtype.kind in "biuf":
            arr = column_or_1d(arr, warn=True)
            check_classification_targets(arr)
            return arr.tolist()
        return list(y) if not isinstance(y, np.ndarray) else y.tolist()

    def _validate_vectors(self, X, reset: bool) -> np.ndarray:
        """Vectors through scikit-learn's checks: dense, numeric, finite, 2-D, n_features_in_."""
        if hasattr(X, "__len__") and not hasattr(X, "shape") and len(X) == 0:
            raise ValueError("X is empty")
        try:
            return validate_data(self, X, reset=reset, dtype=np.float32)
        except ValueError as err:
            raise ValueError(f"X must be a list of texts or a 2-D array of numbers: {err}") from err

    def _check_length(self, X, name) -> int:
        try:
            n = len(X)
        except TypeError:
            raise ValueError(f"{name} must be a list of texts or a 2-D array, got {type(X).__name__}") from None
        if n == 0:
            raise ValueError(f"{name} is empty")
        return n

    def _embed(self, texts) -> np.ndarray:
        if self.embedder_ is None:
            raise ValueError("got texts but embedder=None: pass an embedder name or object, or 2-D vectors")
        return np.asarray(self.embedder_.embed(list(texts)), dtype=np.float32)

    # -- predict --------------------------------------------------------------------------------
    def _vectors(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Support and query vectors in embedding space."""
        if _is_texts(X):
            if not isinstance(self.support_, list):
                raise ValueError("fitted on vectors: predict needs vectors too, not texts")
            if self.support_vectors_ is None:  # vanilla / leave-one-out embed support and queries together
                labels = [str(self.classes_[i]) for i in self.y_index_]
                return tuple(np.asarray(v, dtype=np.float32) for v in self.embedder_.embed_task(
                    self.support_, labels, list(X), mode=self.embedding_mode))
            return self.support_vectors_, self._embed(X)
        if self.support_vectors_ is None or isinstance(self.support_, list):
            raise ValueError("fitted on texts: predict needs texts too, not vectors")
        return self.support_vectors_, self._validate_vectors(X, reset=False)

    def _binary_problems(self) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
        """(support indices, binary labels, positive class, negative class or -1 for 'rest')."""
        C = len(self.classes_)
        if C == 2:
            return [(np.arange(len(self.y_index_)), (self.y_index_ == 1).astype(np.float32), 1, 0)]
        if self.multiclass in ("auto", "ovr"):
            return [(np.arange(len(self.y_index_)), (self.y_index_ == c).astype(np.float32), c, -1) for c in range(C)]
        problems = []
        for a, b in combinations(range(C), 2):
            idx = np.flatnonzero((self.y_index_ == a) | (self.y_index_ == b))
            problems.append((idx, (self.y_index_[idx] == a).astype(np.float32), a, b))
        return problems

    def _sequences(self, problems):
        """Every (problem, permutation, chunk) as support indices and labels, padded to one length."""
        rng = np.random.default_rng(self.random_state)
        max_k = self.head_.config.max_examples
        seqs = []
        for p, (idx, labels, _, _) in enumerate(problems):
            n_chunks = -(-len(idx) // max_k)
            for _ in range(self.n_permutations):
                order = rng.permutation(len(idx))
                for chunk in np.array_split(order, n_chunks):
                    seqs.append((p, idx[chunk], labels[chunk], False))
                    seqs.append((p, idx[chunk], 1 - labels[chunk], True))  # labels swapped
        return seqs

    @torch.inference_mode()
    def _problem_probabilities(self, S_p, Q_p, problems) -> np.ndarray:
        """P(positive) per binary problem and query: (n_problems, n_queries)."""
        seqs = self._sequences(problems)
        L = max(len(s[1]) for s in seqs)
        x_ctx = torch.zeros(len(seqs), L, S_p.shape[1])
        y_ctx = torch.zeros(len(seqs), L)
        lengths = torch.zeros(len(seqs), dtype=torch.long)
        for i, (_, idx, labels, _) in enumerate(seqs):
            x_ctx[i, : len(idx)] = S_p[idx]
            y_ctx[i, : len(idx)] = torch.from_numpy(labels)
            lengths[i] = len(idx)
        device = next(self.head_.parameters()).device
        probs = []
        for start in range(0, len(Q_p), self.query_batch_size):
            q = Q_p[start : start + self.query_batch_size]
            x_q = q.expand(len(seqs), *q.shape)
            probs.append(positive_probability(self.head_, x_ctx.to(device), y_ctx.to(device), x_q.to(device),
                                              lengths[:, None].expand(-1, len(q)).to(device)).cpu())
        probs = torch.cat(probs, dim=1)  # (n_seqs, n_queries)
        swapped = torch.tensor([s[3] for s in seqs])
        probs[swapped] = 1 - probs[swapped]
        owner = torch.tensor([s[0] for s in seqs])
        return torch.stack([probs[owner == p].mean(0) for p in range(len(problems))]).numpy()

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)  # NotFittedError (a ValueError) before fit
        S, Q = self._vectors(X)
        config = self.head_.config
        S_p, Q_p = project_task(S, Q, config.n_dims, self.shrinkage, self.standardize, self.fit_projection_on)
        C = len(self.classes_)
        if self.multiclass == "native" and not (config.multiclass and C <= config.n_classes):
            raise ValueError(f"multiclass='native' needs a multi-class head with >= {C} label slots; "
                             f"this head has {config.n_classes if config.multiclass else 'binary labels'}")
        if self.multiclass in ("auto", "native") and config.multiclass and C <= config.n_classes:
            return native_proba(self.head_, S_p, Q_p, self.y_index_, C, self.n_permutations, self.sign_flips,
                                self.random_state, self.query_batch_size)
        problems = self._binary_problems()
        p = self._problem_probabilities(S_p, Q_p, problems)
        if C == 2:
            return np.stack([1 - p[0], p[0]], axis=1)
        scores = np.zeros((len(Q), C))
        for (_, _, pos, neg), pp in zip(problems, p):
            scores[:, pos] += pp
            if neg >= 0:  # one-vs-one: the pair's other class gets the complement
                scores[:, neg] += 1 - pp
        scores = np.maximum(scores, 1e-9)
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
