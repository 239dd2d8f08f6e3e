"""What a label means, as text: the name of each class that the embedder reads beside the examples.

A user's labels already say something about their classes ("refund_request", "sports"): embedded like
any text, a label's name is one more example of its class that the support set does not have (measured
+2.6…+3.1 points at k = 8 on user text, MiniLM). By default a name is the label string with `_` and `-`
as spaces; a user may give a description per label instead (`{label: "text"}`).

`name_text` is how a name is written for an embedder: bare for sentence encoders; a causal LM's mean
pooling reads a bare word poorly (names hurt SmolLM2 as bare words), so its names go in a short template.
The task bank embeds its classes' names with the same function, so the head trains on what it reads.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tart.data.labels import sorted_labels

# Causal LMs read a name inside a sentence; the packaged sentence encoder reads it bare.
CAUSAL_LM_TEMPLATE = "This text is about {name}."
SENTENCE_ENCODERS = ("minilm-l6",)


def default_name(label) -> str:
    """The name a label gives itself: its string, `_` / `-` as spaces, camelCase split, spaces squeezed."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(label))
    return " ".join(re.sub(r"[_\-]+", " ", text).split()) or str(label)


def resolve_names(classes: Sequence, label_names=None) -> list[str]:
    """One name per class, in `classes` order. `label_names`: None (the labels' own names), or a mapping
    label → description (labels it lacks keep their own name)."""
    if label_names is None:
        return [default_name(c) for c in classes]
    if not isinstance(label_names, Mapping):
        raise ValueError(f"label_names must be a mapping label -> description, got {type(label_names).__name__}")
    unknown = [k for k in label_names if k not in set(classes)]
    if unknown:
        raise ValueError(f"label_names names labels that are not in y: {unknown[:5]}")
    names = []
    for c in classes:
        name = label_names.get(c, default_name(c))
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"label_names[{c!r}] must be a non-empty string, got {name!r}")
        names.append(name.strip())
    return names


def name_text(name: str, embedder: str | None = None) -> str:
    """The text an embedder reads for a class name: bare for a sentence encoder (or an unnamed embedder
    object), in `CAUSAL_LM_TEMPLATE` for the packaged causal LMs."""
    if embedder is None or str(embedder) in SENTENCE_ENCODERS:
        return name
    return CAUSAL_LM_TEMPLATE.format(name=name)


def name_texts(labels: Sequence, label_names=None, embedder: str | None = None) -> list[str]:
    """The texts to embed for the names of the distinct `labels`, in the order of every method's
    `classes_` (`tart.data.labels.sorted_labels`): `resolve_names`, then `name_text`. `label_names`: None,
    "auto" (the labels' own names) or a mapping label -> description."""
    descriptions = label_names if isinstance(label_names, Mapping) else None
    return [name_text(name, embedder) for name in resolve_names(sorted_labels(labels), descriptions)]
