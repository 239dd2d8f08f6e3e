"""TartClassifier: few-shot classification with a frozen embedder and the reasoning head.

A scikit-learn estimator, no gradient step. `fit` does the task's work once: labels to class indices,
the support set's embeddings, the projection into the head's input space (fitted on the support) and
the padded context of every member of the test-time ensemble (`tart.head.ensemble`: native multi-class on
a head with enough label slots, else one-vs-rest / one-vs-one binary problems; orders, slots, sign
flips, chunks past the head's context). `predict_proba` embeds and projects the queries and runs the
ensemble on them in batches of `query_batch_size` (queries never see each other, so the batch size
changes no answer). Where the projection needs the queries (`fit_projection_on="support+queries"`) or
the support's embeddings do (vanilla / leave-one-out), that work moves to `predict_proba`.
`plan(n_queries)` says what the head will read before it runs (the service's cost budget).

What a user has besides labelled examples (issue 25):
- `label_names`: "auto" (default) embeds each label's own name (`tart.data.label_names`: `_`/`-` as spaces),
  a mapping gives descriptions, None reads no names. Names need an embedder (texts); with names given
  as a mapping, `fit([], [])` is zero-shot (k = 0) over the mapping's labels.
- `fit(X, y, unlabeled=texts)`: texts of the task without labels (a seeded sample of at most
  `max_unlabeled`), read by a head with side inputs. Like scikit-learn's semi-supervised estimators
  the pool is given at fit; `transductive=True` also adds each `predict_proba` call's own texts to it
  (so a text's answer then depends on what else is in its call).
The projection is fitted on the support and the names, never on the pool (its many directions,
whitened, would drown the support's few); the pool is projected by it. It is the projection the head
was trained with: its config's `shrunk_std` and `projection_shrinkage` (`shrinkage` given here wins;
None: the head's, else tart.defaults.DEFAULT_SHRINKAGE).
A head with `side_inputs` reads names and unlabelled points in tokens of its own; any other head reads
each name as one more labelled example and ignores the unlabelled pool (`tart.head.ensemble`). A head whose
config asks for it (`propagation`, as tart-base) has its answer blended with label spreading over the task's
own vectors, the pool included (`tart.head.propagation`), given at least one labelled example, and
(`loo_temperature`, as tart-base) raised to a temperature read from the task's own labelled points
(`tart.head.task_temperature`).
- `embedder_backend` runs a named embedder in `auto` (per call, the fastest faithful runtime for its
  shape: tart.lm.backends), or forces torch, `onnx` or `onnx-int8` (ONNX Runtime, see tart.lm.onnx);
  None follows $TART_EMBED_BACKEND, else auto.
"""
from __future__ import annotations

import copy
import math
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from tart.data.label_names import name_texts
from tart.data.labels import sorted_labels
from tart.defaults import (
    DEFAULT_EMBEDDER,
    DEFAULT_HEAD,
    DEFAULT_MAX_UNLABELED,
    DEFAULT_N_PERMUTATIONS,
    DEFAULT_SHRINKAGE,
    EMBED_BACKENDS,
    MIN_POINTS_TO_STANDARDIZE,
)
from tart.head import ensemble, propagation, task_temperature
from tart.head.load import load_head
from tart.head.model import TartReasoningModel


def _resolve_head(head) -> TartReasoningModel:
    return head.eval() if isinstance(head, TartReasoningModel) else load_head(head)  # loaded once per folder


def head_alone(head) -> TartReasoningModel:
    """A copy of `head` (a name, folder or model) that TartClassifier answers with as the head alone: no label
    spreading blended in and no task temperature, the two steps it takes after the head (for studies of them)."""
    head = copy.deepcopy(_resolve_head(head))  # load_head's heads are shared: change a copy
    head.config.propagation = head.config.loo_temperature = 0.0
    return head


def _resolve_embedder(embedder, backend=None):
    if embedder is None or not isinstance(embedder, (str, Path)):
        if backend is not None:
            raise ValueError(f"embedder_backend={backend!r} applies to an embedder given by name or folder, "
                             f"not to {type(embedder).__name__}")
        return embedder
    from tart.lm.embedder import load_embedder

    return load_embedder(str(embedder), **({"backend": backend} if backend else {}))


def _is_texts(X) -> bool:
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(isinstance(x, str) for x in X) or (
        isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "UO"
    )


def _is_empty(X) -> bool:
    try:
        return X is not None and len(X) == 0
    except TypeError:
        return False


def _unique_labels(y) -> np.ndarray:
    """Distinct labels in `sorted_labels` order. A plain numpy array when it holds every value
    exactly (scikit-learn's metrics want one); else an object array (mixed types, or strings that
    numpy would change, e.g. by dropping trailing NUL characters)."""
    seen = sorted_labels(y)
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


def read_names(names: np.ndarray | None, S: np.ndarray, U: np.ndarray | None, name_norm: str,
               shrinkage: float) -> tuple[np.ndarray | None, float]:
    """The names as a head with `TartConfig.name_norm` reads them, and the projection's shrinkage. "texts":
    each name at the mean norm of the task's texts (its support, else its pool, else the names), and from
    names alone no whitening (inf) of their span: at k = 0 the nearest name is then the nearest by cosine."""
    if names is None or name_norm != "texts":
        return names, shrinkage
    texts = S if len(S) else U if U is not None else names
    norms = np.maximum(np.linalg.norm(names, axis=1, keepdims=True), 1e-12)
    return names / norms * np.linalg.norm(texts, axis=1).mean(), shrinkage if len(S) else math.inf


def _encode(y) -> tuple[np.ndarray, np.ndarray]:
    """(classes, each label's index in classes)."""
    classes = _unique_labels(y)
    index = {c: i for i, c in enumerate(classes.tolist())}
    return classes, np.array([index[v] for v in y])


class TartClassifier(ClassifierMixin, BaseEstimator):
    # checked by scikit-learn when fit starts (InvalidParameterError is a ValueError)
    _parameter_constraints: dict = {
        "head": [str, os.PathLike, TartReasoningModel],
        "embedder": "no_validation",  # None, a short name or folder, or any object with .embed
        "embedder_backend": [None, StrOptions(set(EMBED_BACKENDS))],
        "embedding_mode": [StrOptions({"stream", "vanilla", "loo", "leave-one-out"})],
        "shrinkage": [None, Interval(Real, 0, None, closed="left")],
        "standardize": ["boolean"],
        "fit_projection_on": [StrOptions({"support", "support+queries"})],
        "multiclass": [StrOptions({"auto", "native", "ovr", "ovo"})],
        "sign_flips": ["boolean"],
        "n_permutations": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "query_batch_size": [Interval(Integral, 1, None, closed="left")],
        "label_names": [None, StrOptions({"auto"}), dict],
        "max_unlabeled": [Interval(Integral, 0, None, closed="left")],
        "transductive": ["boolean"],
    }

    def __init__(
        self,
        head=DEFAULT_HEAD,
        embedder=DEFAULT_EMBEDDER,
        embedding_mode: str = "stream",
        shrinkage: float | None = None,
        standardize: bool = True,
        fit_projection_on: str = "support",
        multiclass: str = "auto",
        n_permutations: int = DEFAULT_N_PERMUTATIONS,
        sign_flips: bool = True,
        random_state: int | None = 0,
        query_batch_size: int = 128,  # offline use: fewer forwards; the service uses 32 (serving/cost.py QUERY_BATCH)
        embedder_backend: str | None = None,
        label_names="auto",
        max_unlabeled: int = DEFAULT_MAX_UNLABELED,
        transductive: bool = False,
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
        self.label_names = label_names
        self.max_unlabeled = max_unlabeled
        self.transductive = transductive

    # -- fit ------------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, unlabeled=None, name_vectors=None):
        """Fit on labelled examples X, y (texts or 2-D vectors); `unlabeled`: more texts (or vectors) of the
        task without labels. With `label_names` a mapping, X and y may be empty (zero-shot; on texts, or on
        vectors with `name_vectors`).
        `name_vectors`: the class names already embedded (rows in `classes_` order), for a fit on vectors
        by a caller that embeds texts itself (the service, the corpus job); ignored if label_names=None."""
        zero_shot = _is_empty(X) and y is not None and _is_empty(y) and isinstance(self.label_names, dict)
        if zero_shot:
            if len(self.label_names) < 2:
                raise ValueError(f"zero-shot classification needs label_names for at least 2 labels, got "
                                 f"{list(self.label_names)}")
            X, y = [], []
        texts = name_vectors is None if zero_shot else _is_texts(X)
        if zero_shot and not texts:
            X = np.zeros((0, np.shape(name_vectors)[-1]), dtype=np.float32)
            self.n_features_in_ = X.shape[1]
        elif not texts:
            X = self._validate_vectors(X, reset=True)  # sets n_features_in_
        n = len(X) if zero_shot else self._check_length(X, "X")
        y = self._check_targets(y)
        if len(y) != n:
            raise ValueError(f"X has {n} examples but y has {len(y)} labels")
        try:
            self.classes_, self.y_index_ = _encode(list(self.label_names) if zero_shot else y)
        except TypeError as err:
            raise ValueError(f"labels must be hashable values: {err}") from err
        if zero_shot:
            self.y_index_ = np.zeros(0, dtype=np.int64)
        if len(self.classes_) < 2:
            raise ValueError(f"need at least 2 distinct labels to classify, got 1 class: {list(self.classes_)}")
        self.head_ = _resolve_head(self.head)
        # the embedder is loaded only for texts: vectors never pull in a language model
        self.embedder_ = _resolve_embedder(self.embedder, self.embedder_backend) if texts else None
        self.support_ = list(X) if texts else X
        if not texts:
            self.support_vectors_ = self.support_
        elif self.embedding_mode == "stream" and not zero_shot:
            self.support_vectors_ = self._embed(self.support_)
        else:  # vanilla / leave-one-out: support and queries are embedded together at predict time
            self.support_vectors_ = None
        self.name_vectors_ = self._embed_names(texts, name_vectors)
        if zero_shot:  # no support: an empty one, as wide as the names
            self.support_vectors_ = np.zeros((0, self.name_vectors_.shape[1]), dtype=np.float32)
        if texts:
            self.n_features_in_ = None if self.support_vectors_ is None else self.support_vectors_.shape[1]
        self.unlabeled_vectors_ = self._unlabeled(unlabeled, texts)
        # the task's work, once: projection and every member's context (unless the queries are needed too)
        self.projection_ = self.ensemble_ = self.spreading_ = self.temperature_ = None
        if self.support_vectors_ is not None and self.fit_projection_on == "support" and not self.transductive:
            self.projection_, self.ensemble_, self.spreading_, self.temperature_ = self._fit_task(self.support_vectors_)
        return self

    def _embed_names(self, texts: bool, given=None) -> np.ndarray | None:
        """Each class's name embedded (C, hidden), or None where names are off or there is no embedder."""
        if self.label_names is None:
            return None
        if given is not None:
            given = np.asarray(given, dtype=np.float32)
            if given.ndim != 2 or len(given) != len(self.classes_):
                raise ValueError(f"name_vectors must hold one row per class ({len(self.classes_)}), got shape {given.shape}")
            return given
        if not texts:
            if isinstance(self.label_names, dict):
                raise ValueError("label_names needs texts and an embedder: fitted on vectors, there is none to "
                                 "embed the names (pass label_names=None)")
            return None
        model = str(self.embedder) if isinstance(self.embedder, (str, Path)) else getattr(self.embedder_, "model_name", None)
        return self._embed(name_texts(self.classes_.tolist(), self.label_names, model))

    def unlabeled_sample(self, n: int) -> np.ndarray:
        """Which of n unlabelled texts the classifier reads: a seeded sample of at most max_unlabeled, in
        their order (a caller that embeds texts itself embeds only these)."""
        return np.sort(np.random.default_rng(self.random_state).permutation(n)[: self.max_unlabeled])

    def _unlabeled(self, unlabeled, texts: bool) -> np.ndarray | None:
        """The unlabelled pool's vectors: a seeded sample of at most max_unlabeled."""
        if unlabeled is None or self.max_unlabeled == 0:
            return None
        if _is_empty(unlabeled):
            return None
        if texts != _is_texts(unlabeled):
            raise ValueError(f"unlabeled must be {'texts' if texts else 'vectors'} like X")
        keep = self.unlabeled_sample(len(unlabeled))
        if texts:
            return self._embed([unlabeled[i] for i in keep])
        return self._validate_vectors(unlabeled, reset=False)[keep]

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
    def _vectors(self, X) -> tuple[np.ndarray | None, np.ndarray]:
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

    def _fit_task(self, S, Q=None):
        """The projection, the ensemble's contexts on the projected task, label spreading over the task's
        own vectors where the head asks for it (`TartConfig.propagation`) and there is a pool, else None, and
        the task's temperature (`TartConfig.loo_temperature`; else 1). The
        projection is fitted on S and the names (and Q with support+queries), as the prior fits it in
        training; the unlabelled pool (with Q when transductive) is projected by it."""
        U = self.unlabeled_vectors_
        if self.transductive and Q is not None:  # the call's own texts join the pool, as many as it holds
            U = Q if U is None else np.concatenate([U, Q])
            U = U[self.unlabeled_sample(len(U))]
        config = self.head_.config  # a head is served with the projection it was trained with
        shrinkage = next(s for s in (self.shrinkage, config.projection_shrinkage, DEFAULT_SHRINKAGE) if s is not None)
        names, shrinkage = read_names(self.name_vectors_, S, U, config.name_norm, shrinkage)
        # the names too: projected by a fit on the support alone, a name keeps only the support's few
        # directions. Not the unlabelled pool (see the module docstring): it is projected after.
        points = [S] + ([Q] if Q is not None and self.fit_projection_on == "support+queries" else [])
        fit_on = np.concatenate(points + ([names] if names is not None else []))
        # a feature's spread over a handful of points is noise: dividing by it swamps the few directions
        # that matter (zero-shot from 2 names was below chance on animal-vs-food, standardised)
        standardize = self.standardize and len(fit_on) >= MIN_POINTS_TO_STANDARDIZE
        fitted = ensemble.fit_task_projection(fit_on, config.n_dims, shrinkage, standardize, config.shrunk_std)
        side = ensemble.Side(None if names is None else ensemble.project(fitted, names),
                              None if U is None else ensemble.project(fitted, U))
        members = ensemble.Ensemble(self.head_, ensemble.project(fitted, S), self.y_index_, len(self.classes_),
                                     self.multiclass, self.n_permutations, self.sign_flips, self.random_state, side)
        spreading = None
        # not zero-shot: spread from names alone it cost MiniLM 1.3 points (dev suite, tuning seeds)
        if config.propagation and U is not None and len(S) and ensemble.reads_side_inputs(
                config, len(self.classes_), self.multiclass):
            # a name weighs in the spreading as the head's base starts it: half of its largest weight
            spreading = propagation.fit_spreading(S, self.y_index_, len(self.classes_), self.name_vectors_,
                                                  config.max_name_weight / 2, U, config.propagation_alpha,
                                                  config.propagation_neighbours)
        temperature = 1.0
        if config.loo_temperature and ensemble.reads_side_inputs(config, len(self.classes_), self.multiclass):
            temperature = task_temperature.loo_temperature(self.head_, *members.member(0))
        return fitted, members, spreading, temperature

    def plan(self, n_queries: int, y=None, n_unlabeled: int = 0) -> ensemble.HeadCost:
        """The head's work for `n_queries` queries, known before any of it runs: of the fitted task, or
        (unfitted) of a support set labelled `y` (texts, names as `label_names` says) with `n_unlabeled`
        unlabelled texts; it depends on the labels and those counts alone."""
        if y is None:
            check_is_fitted(self)
            y_index, n_classes, head = self.y_index_, len(self.classes_), self.head_
            named = self.name_vectors_ is not None
            n_unlabeled = 0 if self.unlabeled_vectors_ is None else len(self.unlabeled_vectors_)
        else:
            classes, y_index = _encode(list(y))
            n_classes, head = len(classes), _resolve_head(self.head)
            named = self.label_names is not None  # fitted on vectors, the caller embeds the names (name_vectors)
            n_unlabeled = min(n_unlabeled, self.max_unlabeled)
        if self.transductive:  # the call's texts join the pool
            n_unlabeled = min(self.max_unlabeled, n_unlabeled + n_queries)
        config = head.config
        seqs = ensemble.plan(ensemble.context_labels(y_index, n_classes, config, self.multiclass, named),
                              n_classes, config, self.multiclass, self.n_permutations, self.sign_flips, self.random_state)
        side = ensemble.side_tokens(config, n_classes, self.multiclass, named, n_unlabeled)
        return ensemble.head_cost(seqs, n_queries, self.query_batch_size, side)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, columns in `classes_` order."""
        return np.concatenate(list(self.iter_proba(X)))

    def iter_proba(self, X):
        """`predict_proba` in chunks of `query_batch_size` queries, each computed when asked for: a caller
        that stops asking stops the work (the service's cancellation: serving/headpool.py)."""
        check_is_fitted(self)  # NotFittedError (a ValueError) before fit
        S, Q = self._vectors(X)
        projection, members = self.projection_, self.ensemble_
        spreading, temperature = self.spreading_, self.temperature_
        if members is None:  # the projection, the pool or the support's embeddings depend on these queries
            takes_queries = self.fit_projection_on == "support+queries" or self.transductive
            projection, members, spreading, temperature = self._fit_task(S, Q if takes_queries else None)
        Q_p = ensemble.project(projection, Q)
        batches = [slice(start, start + self.query_batch_size) for start in range(0, len(Q_p), self.query_batch_size)]

        def answer(b: slice) -> np.ndarray:
            proba = members.proba(Q_p[b])
            if spreading is not None:
                proba = propagation.blend(proba, spreading.log_proba(Q[b]), self.head_.config.propagation)
            return task_temperature.sharpen(proba, temperature)

        return (answer(b) for b in batches)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
