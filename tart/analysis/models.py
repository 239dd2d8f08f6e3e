"""Model specs: one string names a few-shot text classifier that analyses can fit and query.

Grammar: `METHOD[:EMBEDDER]`, e.g. `tart`, `logreg:minilm-l6`, `icl:smollm2-135m`,
`centroid:/path/to/model`. METHOD is any method of the registry `tart.methods.METHODS`; EMBEDDER is
a short name known to `tart.models` or a local model folder / .gguf file (default
`smollm2-135m`). Every model is a `tart.methods.text.TextClassifier`:

    model = load_model("logreg:minilm-l6", seed=0)
    model.fit(texts, labels)          # -> model; sets model.classes_
    model.predict_proba(texts)        # (n, C), columns follow model.classes_
    model.predict(texts)              # classes_[argmax predict_proba]

How each method turns scores into probabilities is documented with the method (tart/methods/).
"""
from __future__ import annotations

from tart.methods import DEFAULT_CAUSAL_LM, METHODS, text_classifier


def parse_spec(spec: str) -> tuple[str, str]:
    """`METHOD[:EMBEDDER]` -> (method, embedder); ValueError naming the known methods."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty model spec; expected METHOD[:EMBEDDER] with METHOD in {', '.join(METHODS)}")
    method, _, embedder = spec.strip().partition(":")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} in model spec {spec!r}; known methods: {', '.join(METHODS)} "
                         f"(spec: METHOD[:EMBEDDER], embedder default {DEFAULT_CAUSAL_LM})")
    return method, embedder or DEFAULT_CAUSAL_LM


def load_model(spec: str, seed: int = 0):
    """An unfitted model for `spec`. The embedder is loaded now, so an unknown one fails here
    (ValueError listing the known short names) and not in the middle of an analysis."""
    method, embedder = parse_spec(spec)
    return text_classifier(method, embedder, seed=seed)
