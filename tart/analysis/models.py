"""Model specs: one string names a few-shot text classifier that analyses can fit and query.

Grammar: `METHOD[:EMBEDDER]`, e.g. `tart`, `logreg:minilm-l6`, `icl:smollm2-135m`,
`centroid:/path/to/model`. EMBEDDER is a short name known to `tart.embeddings` or a local model
folder / .gguf file (default `smollm2-135m`). Every model built here has the same interface:

    model = load_model("logreg:minilm-l6", seed=0)
    model.fit(texts, labels)          # -> model; sets model.classes_
    model.predict_proba(texts)        # (n, C), columns follow model.classes_
    model.predict(texts)              # classes_[argmax predict_proba]

Methods (the registry `MODELS` maps each name to a builder `(embedder_name, seed) -> model`; add
one entry to add a method):
- tart:     `TartClassifier` (the shipped head) on the embedder's stream embeddings.
- logreg:   `LogRegProbe` on the embedder's stream embeddings; its own probabilities.
- centroid: `CentroidClassifier` on the same embeddings; probabilities = softmax of the cosine
            similarities to the class centroids, p_c = exp(cos_c) / sum_j exp(cos_j) (temperature 1:
            they stay close to uniform, but their ranking is the centroid's prediction).
- icl:      `ICLClassifier` prompting the embedder's causal LM; probabilities = softmax over the
            labels' total log-likelihoods, p_c = exp(ll_c) / sum_j exp(ll_j). Causal LMs only.
- icl-cal:  icl with contextual calibration (`CalibratedICLClassifier`). Causal LMs only.
- comprw:   component reweighting (`ComponentReweightingClassifier`); probabilities = softmax of the
            reweighted label-word logits. Causal LMs only.
"""
from __future__ import annotations

import numpy as np

from tart.baselines import softmax

DEFAULT_EMBEDDER = "smollm2-135m"


class _TextModel:
    """Shared plumbing: input checks and `predict` from `predict_proba`."""

    def fit(self, texts, labels):
        texts, labels = list(texts), list(labels)
        if not texts or len(texts) != len(labels):
            raise ValueError(f"need as many labels as texts, and at least one: {len(texts)} vs {len(labels)}")
        if len(set(labels)) < 2:
            raise ValueError(f"need at least 2 distinct labels to classify, got only {sorted(set(labels))}")
        self._fit(texts, labels)
        return self

    def predict(self, texts) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(texts), axis=1)]


class EmbeddingModel(_TextModel):
    """A vector classifier (scikit-learn style) on a frozen embedder's stream embeddings.

    `scores="proba"` uses the estimator's predict_proba; `scores="softmax"` a softmax of its
    decision_function (for classifiers without probabilities, like nearest centroid).
    """

    def __init__(self, estimator, embedder: str, scores: str = "proba"):
        self.estimator, self.embedder, self.scores = estimator, embedder, scores

    def _fit(self, texts, labels):
        from tart.embeddings import load_embedder

        self.embedder_ = load_embedder(self.embedder)
        self.estimator.fit(self.embedder_.embed(texts), labels)
        self.classes_ = np.asarray(self.estimator.classes_)

    def predict_proba(self, texts) -> np.ndarray:
        X = self.embedder_.embed(list(texts))
        if self.scores == "softmax":
            return softmax(self.estimator.decision_function(X))
        return np.asarray(self.estimator.predict_proba(X), dtype=np.float64)


class PromptModel(_TextModel):
    """A classifier that prompts the embedder's causal LM; `make(lm, tokenizer, seed)` builds it."""

    def __init__(self, embedder: str, make, seed: int = 0):
        self.embedder, self.make, self.seed = embedder, make, seed

    def _fit(self, texts, labels):
        from tart.baselines import load_causal_lm
        from tart.embeddings import load_embedder

        emb = load_embedder(self.embedder)
        self.lm_classifier_ = self.make(load_causal_lm(emb), emb.tokenizer, self.seed).fit(texts, labels)
        self.classes_ = np.asarray(self.lm_classifier_.classes_)

    def predict_proba(self, texts) -> np.ndarray:
        return self.lm_classifier_.predict_proba(list(texts))


def _tart(embedder: str, seed: int):
    from tart.classifier import TartClassifier

    return TartClassifier(head="tart-compact", embedder=embedder, random_state=seed)


def _logreg(embedder: str, seed: int):
    from tart.baselines import LogRegProbe

    return EmbeddingModel(LogRegProbe(random_state=seed), embedder)


def _centroid(embedder: str, seed: int):
    from tart.baselines import CentroidClassifier

    return EmbeddingModel(CentroidClassifier(), embedder, scores="softmax")


def _prompting(method: str, make):
    """A builder for a method that prompts a causal LM (an encoder gets a clear error)."""
    def build(embedder: str, seed: int):
        from tart.embeddings import load_embedder

        if not load_embedder(embedder).is_causal_lm:
            raise ValueError(f"{method} needs a causal LM, but {embedder!r} is not "
                             "one (use tart, logreg or centroid with it)")
        return PromptModel(embedder, make, seed)
    return build


def _make_icl(lm, tokenizer, seed):
    from tart.baselines import ICLClassifier

    return ICLClassifier(lm, tokenizer)


def _make_icl_cal(lm, tokenizer, seed):
    from tart.analysis.component_reweighting import CalibratedICLClassifier

    return CalibratedICLClassifier(lm, tokenizer)


def _make_comprw(lm, tokenizer, seed):
    from tart.analysis.component_reweighting import ComponentReweightingClassifier

    return ComponentReweightingClassifier(lm, tokenizer, random_state=seed)


# method name -> builder(embedder name or path, seed) -> unfitted model with the interface above
MODELS = {"tart": _tart, "logreg": _logreg, "centroid": _centroid, "icl": _prompting("icl", _make_icl),
          "icl-cal": _prompting("icl-cal", _make_icl_cal), "comprw": _prompting("comprw", _make_comprw)}


def parse_spec(spec: str) -> tuple[str, str]:
    """`METHOD[:EMBEDDER]` -> (method, embedder); ValueError naming the known methods."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty model spec; expected METHOD[:EMBEDDER] with METHOD in {', '.join(MODELS)}")
    method, _, embedder = spec.strip().partition(":")
    if method not in MODELS:
        raise ValueError(f"unknown method {method!r} in model spec {spec!r}; known methods: {', '.join(MODELS)} "
                         f"(spec: METHOD[:EMBEDDER], embedder default {DEFAULT_EMBEDDER})")
    return method, embedder or DEFAULT_EMBEDDER


def load_model(spec: str, seed: int = 0):
    """An unfitted model for `spec`. The embedder is loaded now, so an unknown one fails here
    (ValueError listing the known short names) and not in the middle of an analysis."""
    from tart.embeddings import load_embedder

    method, embedder = parse_spec(spec)
    load_embedder(embedder)
    return MODELS[method](embedder, seed)
