"""Model specs: one string names a few-shot text classifier that analyses can fit and query.

Grammar (the project's one method spec, `tart.methods.parse_spec`): `METHOD[:EMBEDDER][,key=value...]`,
e.g. `tart`, `logreg:minilm-l6`, `icl:smollm2-135m`, `tart:minilm-l6,n_permutations=8`,
`centroid:/path/to/model`. METHOD is any method of the registry `tart.methods.METHODS`; EMBEDDER is
a short name known to `tart.lm.registry` or a local model folder / .gguf file (default
`smollm2-135m`); the options go to the method (`tart.methods.make`). Every model is a `tart.methods.text.TextClassifier`:

    model = model_from_spec("logreg:minilm-l6", seed=0)
    model.fit(texts, labels)          # -> model; sets model.classes_
    model.predict_proba(texts)        # (n, C), columns follow model.classes_
    model.predict(texts)              # classes_[argmax predict_proba]

How each method turns scores into probabilities is documented with the method (tart/methods/).
"""
from __future__ import annotations

from tart.methods import DEFAULT_CAUSAL_LM, METHODS, text_classifier
from tart.methods import parse_spec as parse_method_spec


def parse_spec(spec: str) -> tuple[str, str, dict]:
    """`METHOD[:EMBEDDER][,key=value...]` -> (method, embedder, options); ValueError naming the known methods."""
    try:
        parsed = parse_method_spec(spec)
    except ValueError as err:
        raise ValueError(f"{err}; expected METHOD[:EMBEDDER] with METHOD in {', '.join(METHODS)}") from None
    if parsed.name not in METHODS:
        raise ValueError(f"unknown method {parsed.name!r} in model spec {spec!r}; known methods: "
                         f"{', '.join(METHODS)} (spec: METHOD[:EMBEDDER], embedder default {DEFAULT_CAUSAL_LM})")
    return parsed.name, parsed.arg or DEFAULT_CAUSAL_LM, parsed.params


def model_from_spec(spec: str, seed: int = 0):
    """An unfitted model for `spec`. The embedder is loaded now, so an unknown one fails here
    (ValueError listing the known short names) and not in the middle of an analysis."""
    method, embedder, options = parse_spec(spec)
    return text_classifier(method, embedder, seed=seed, **options)
