"""TART: a plug-in reasoning head for few-shot classification on top of frozen models.

`import tart` is light (no torch): the names below load on first use. Importing `tart.head.model`
(which `TartConfig`, `TartReasoningModel`, `TartClassifier` and every head loader do) registers the
head's model type with transformers' AutoConfig / AutoModel.
"""
from importlib import import_module

__version__ = "0.1.0"
_LAZY = {"TartConfig": "tart.head.model", "TartReasoningModel": "tart.head.model",
         "TartClassifier": "tart.classifier", "load_head": "tart.head.load"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tart' has no attribute {name!r}")
