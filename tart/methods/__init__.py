"""Every few-shot method, one registry, one protocol (scikit-learn's).

Each method is an estimator: `fit(X, y)` returns it, `predict_proba(X)` has one column per entry of
`classes_`, `predict(X)` is `classes_[argmax predict_proba]`. What X is depends on what the method
reads (`Method.reads`):

- "vectors": embeddings (or any feature vectors): tart, logreg, centroid, centroid-raw.
- "prompt":  texts; the method prompts a causal LM (the embedder's own model): icl, icl-cal, comprw.
- "text":    texts; the method fine-tunes its own encoder: setfit.

`make(name, **context)` builds the bare estimator (what `tart evaluate` fits on shared embeddings);
`text_classifier(name, embedder)` the same method on texts (vectors methods behind the frozen
embedder), which is what the analyses use. Add a method with one `Method` entry in `METHODS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tart.defaults import DEFAULT_CAUSAL_LM, DEFAULT_HEAD, DEFAULT_N_PERMUTATIONS, SETFIT_BODY


@dataclass(frozen=True)
class Method:
    name: str
    reads: str                  # "vectors", "prompt" or "text" (see the module docstring)
    build: Callable[..., object]
    summary: str


def _tart(seed=0, head=None, n_permutations=DEFAULT_N_PERMUTATIONS, **_):
    from tart.classifier import TartClassifier

    return TartClassifier(head=head or DEFAULT_HEAD, embedder=None, random_state=seed, n_permutations=n_permutations)


def _logreg(seed=0, **_):
    from tart.methods.probes import LogRegProbe

    return LogRegProbe(random_state=seed)


def _centroid(standardize: bool):
    def build(**_):
        from tart.methods.probes import CentroidClassifier

        return CentroidClassifier(standardize=standardize)
    return build


def _icl(lm, tokenizer, icl_max_tokens=None, **_):
    from tart.methods.prompting import ICLClassifier

    return ICLClassifier(lm, tokenizer, max_prompt_tokens=icl_max_tokens)


def _icl_cal(lm, tokenizer, icl_max_tokens=None, **_):
    from tart.methods.prompting import CalibratedICLClassifier

    return CalibratedICLClassifier(lm, tokenizer, max_prompt_tokens=icl_max_tokens)


def _comprw(lm, tokenizer, seed=0, **_):
    from tart.methods.comprw import ComponentReweightingClassifier

    return ComponentReweightingClassifier(lm, tokenizer, random_state=seed)


def _setfit(seed=0, setfit_body=None, setfit_iterations=20, **_):
    from tart.methods.setfit import SetFitClassifier

    return SetFitClassifier(body=setfit_body or SETFIT_BODY, num_iterations=setfit_iterations, random_state=seed)


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("tart", "vectors", _tart, "the reasoning head on the embeddings (TartClassifier), reading what it reads "
                                     "by default: on text, the labels' names and the test texts as unlabelled pool"),
    Method("tart-nopool", "vectors", _tart, "tart without the unlabelled pool (label names still read on text)"),
    Method("logreg", "vectors", _logreg, "logistic regression on standardised embeddings, C by CV on the support set"),
    Method("centroid", "vectors", _centroid(True), "nearest class mean by cosine, standardised features"),
    Method("centroid-raw", "vectors", _centroid(False), "nearest class mean by cosine, raw (centred) embeddings"),
    Method("icl", "prompt", _icl, "in-context prompting of the causal LM, labels scored by log-likelihood"),
    Method("icl-cal", "prompt", _icl_cal, "icl with contextual calibration"),
    Method("comprw", "prompt", _comprw, "component reweighting of the causal LM's heads and MLPs"),
    Method("setfit", "text", _setfit, "SetFit: contrastive fine-tuning of MiniLM + logistic head"),
]}


@dataclass(frozen=True)
class Spec:
    """A method named in one string, the grammar every tool shares: `NAME[:ARG][,key=value...]`, e.g.
    `logreg`, `icl:smollm2-135m`, `tart:tart-bank,n_permutations=8`. What ARG names is the tool's (the
    analyses: an embedder; the dev suite: a head); each value reads as a bool, int or float where it can."""
    name: str
    arg: str = ""
    params: dict = field(default_factory=dict)


def _value(text: str):
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_spec(text: str) -> Spec:
    """`NAME[:ARG][,key=value...]` -> Spec; ValueError on an empty spec or an option without '='."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty method spec; expected NAME[:ARG][,key=value...]")
    head, *options = text.strip().split(",")
    name, _, arg = head.partition(":")
    params = {}
    for option in options:
        key, eq, value = option.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"option {option!r} of method spec {text!r} is not key=value")
        params[key.strip()] = _value(value.strip())
    return Spec(name.strip(), arg.strip(), params)


def split_specs(text: str) -> list[str]:
    """A list of specs on one line: separated by ';', or by ',' when none has options (`logreg,centroid`)."""
    return [s.strip() for s in text.split(";" if ";" in text else ",") if s.strip()]


def get(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


def make(name: str, **context):
    """An unfitted estimator. context: seed, head, n_permutations (tart); lm, tokenizer,
    icl_max_tokens (prompt methods); setfit_body, setfit_iterations (setfit)."""
    return get(name).build(**context)


def text_classifier(name: str, embedder: str = DEFAULT_CAUSAL_LM, seed: int = 0, **context):
    """The method as a `TextClassifier` (fit / predict_proba / predict on texts). Vectors methods
    run behind the frozen embedder (stream mode); prompt methods prompt the embedder's causal LM
    (ValueError for an encoder); setfit fine-tunes its own body."""
    from tart.methods.text import Embed, TextClassifier

    method = get(name)
    if method.reads == "text":
        return TextClassifier(make(name, seed=seed, **context))
    from tart.lm.embedder import load_embedder

    emb = load_embedder(embedder)
    if method.reads == "vectors":
        from sklearn.pipeline import make_pipeline

        return TextClassifier(make_pipeline(Embed(emb), make(name, seed=seed, **context)))
    if not emb.is_causal_lm:
        raise ValueError(f"{name} needs a causal LM, but {embedder!r} is not one "
                         f"(use one of {', '.join(n for n, m in METHODS.items() if m.reads == 'vectors')} with it)")
    from tart.methods.prompting import load_causal_lm

    return TextClassifier(make(name, seed=seed, lm=load_causal_lm(emb), tokenizer=emb.tokenizer, **context))
