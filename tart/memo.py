"""The one memo of what a process loads once: models, tokenizers, embedders (tart.lm) and heads (tart.head).

`once(key, make)` makes the object the first time `key` is asked for (one thread at a time) and returns
the same object after. What it holds is shared: callers read it and never change it in place.
"""
from __future__ import annotations

import threading

_LOADED: dict = {}  # key -> the object made for it
_LOCK = threading.RLock()  # reentrant: a model's loader loads its tokenizer under it


def once(key: tuple, make):
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = make()
        return _LOADED[key]
