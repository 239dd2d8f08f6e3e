"""Which runtime embeds a call: the one asked for (argument, else $TART_EMBED_BACKEND), or `auto`, the
fastest faithful one for the call's shape, from the measured table in tart.defaults (EMBED_BACKEND_TABLE).

The table's rows are (most texts in the call, most tokens per text, backend), first fit wins; a model it
does not list runs in torch. The Embedder adds what a shape cannot say: `auto` runs in torch when ONNX
Runtime is not installed, when the model runs on a GPU, and for a causal LM's vanilla and leave-one-out
passes (torch reuses the prompt's keys and values there; an ONNX graph cannot).
"""
from __future__ import annotations

import os

from tart.defaults import EMBED_BACKEND_TABLE, EMBED_BACKENDS

# Padded tokens per forward pass (the Embedder's batch_tokens) in each backend. Measured on 2 threads
# (results/benchmarks/embed_backend.json, short texts of ~15 tokens): ONNX Runtime's texts/s was highest
# at 8-32 texts per forward (~130-550 tokens) and 12-45 % lower at 128 (~2000 tokens) on both embedders;
# torch's rose with the batch, hence its 8192.
BATCH_TOKENS = {"torch": 8192, "onnx": 1024, "onnx-int8": 1024}


def resolve_backend(backend=None) -> str:
    """`backend`, else $TART_EMBED_BACKEND (read here only), else auto; a clear error for anything else."""
    name = str(backend or os.environ.get("TART_EMBED_BACKEND") or "auto")
    if name not in EMBED_BACKENDS:
        raise ValueError(f"embedder backend must be one of {', '.join(EMBED_BACKENDS)}, not {name!r}")
    return name


def table_backend(model: str, n_texts: int, tokens_per_text: float) -> str:
    """The table's backend for a call of `n_texts` sequences of `tokens_per_text` tokens on average."""
    for most_texts, most_tokens, backend in EMBED_BACKEND_TABLE.get(str(model), ()):
        if (most_texts is None or n_texts <= most_texts) and (most_tokens is None or tokens_per_text <= most_tokens):
            return backend
    return "torch"


def table_backends(model: str) -> list[str]:
    """Every backend the table may pick for `model`, in row order (torch alone for a model not listed)."""
    return list(dict.fromkeys(row[2] for row in EMBED_BACKEND_TABLE.get(str(model), ()))) or ["torch"]


def import_onnx(*modules: str) -> None:
    """Import what the onnx extra provides (ONNX Runtime to run; onnx and onnxscript to export), or say
    how to install it."""
    import importlib

    # ONNX Runtime (1.32 here) sends usage telemetry and writes a device id under ~/.cache unless told not to;
    # TART reports nothing anywhere (as BENTOML_DO_NOT_TRACK for the service): off unless the user set it
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"the onnx embedder backends need ONNX Runtime: pip install 'tart[onnx]' ({err})") from err


def onnx_runtime_installed() -> bool:
    """Whether ONNX Runtime imports (the `onnx` extra): without it `auto` runs in torch, with no error."""
    try:
        import_onnx("onnxruntime")
    except ImportError:
        return False
    return True
