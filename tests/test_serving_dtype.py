"""Embedder weights in bfloat16 (the default where the CPU runs it natively and faster) or float32:
the choice, its setting, and that bfloat16 vectors stay close to float32 ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tart.embeddings import Embedder, bf16_faster, bf16_supported, resolve_dtype

TEXTS = ["a cat sleeping on the sofa", "fresh bread from the oven", "the market fell sharply today",
         "a hammer and a box of nails", "she sang a song about the sea"]


def test_resolve_dtype(monkeypatch):
    monkeypatch.delenv("TART_EMBED_DTYPE", raising=False)
    assert resolve_dtype("float32") is torch.float32 and resolve_dtype("bfloat16") is torch.bfloat16
    assert resolve_dtype() is (torch.bfloat16 if bf16_faster() else torch.float32)
    assert bf16_faster() <= bf16_supported()  # never chosen where it is not supported
    monkeypatch.setenv("TART_EMBED_DTYPE", "float32")
    assert resolve_dtype() is torch.float32 and resolve_dtype("bfloat16") is torch.bfloat16  # argument first
    with pytest.raises(ValueError, match="float16"):
        resolve_dtype("float16")


def test_auto_choice_is_kept_across_processes(tmp_path, monkeypatch):
    """`auto` times bfloat16 once per machine and keeps the verdict in the user cache: a restarted
    server reads it back instead of re-timing, which on a busy machine could come out the other way."""
    import json

    from tart import embeddings

    monkeypatch.setenv("TART_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(embeddings, "_BF16_FASTER", {})
    first = bf16_faster()
    record = json.loads((tmp_path / "bf16-faster.json").read_text())
    assert list(record.values()) == [first]
    (tmp_path / "bf16-faster.json").write_text(json.dumps({k: not v for k, v in record.items()}))
    monkeypatch.setattr(embeddings, "_BF16_FASTER", {})  # a new process
    assert bf16_faster() is (not first)  # read back, not measured again


@pytest.mark.skipif(not bf16_supported(), reason="no native bfloat16 on this CPU")
def test_bfloat16_vectors_close_to_float32():
    f32 = Embedder("minilm-l6", dtype="float32", progress=False)
    b16 = Embedder("minilm-l6", dtype="bfloat16", progress=False)
    assert f32.model.dtype == torch.float32 and b16.model.dtype == torch.bfloat16
    a, b = f32.embed(TEXTS), b16.embed(TEXTS)
    assert b.dtype == np.float32
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.995, cos
    assert not np.array_equal(a, b)  # really another computation
