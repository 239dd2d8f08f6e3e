"""Embedder weights in bfloat16 (what `auto` takes where the CPU reports native bfloat16) or float32:
the choice, its setting, and that bfloat16 vectors stay close to float32 ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tart.lm.dtype import bf16_preferred, bf16_supported, dtype_setting, resolve_dtype
from tart.lm.embedder import Embedder

TEXTS = ["a cat sleeping on the sofa", "fresh bread from the oven", "the market fell sharply today",
         "a hammer and a box of nails", "she sang a song about the sea"]


def test_resolve_dtype(monkeypatch):
    monkeypatch.delenv("TART_EMBED_DTYPE", raising=False)
    assert dtype_setting() == "auto"
    assert resolve_dtype("float32") is torch.float32 and resolve_dtype("bfloat16") is torch.bfloat16
    assert resolve_dtype() is (torch.bfloat16 if bf16_preferred() else torch.float32)
    assert bf16_preferred() <= bf16_supported()  # never chosen where it is not supported
    monkeypatch.setenv("TART_EMBED_DTYPE", "float32")
    assert dtype_setting() == "float32" and dtype_setting("auto") == "auto"
    assert resolve_dtype() is torch.float32 and resolve_dtype("bfloat16") is torch.bfloat16  # argument first
    with pytest.raises(ValueError, match="float16"):
        resolve_dtype("float16")


def test_auto_follows_the_reported_capabilities(monkeypatch):
    """`auto` is a rule on what the hardware reports, never a timing: bfloat16 on an x86 CPU with
    AVX-512 BF16 or AMX, float32 on one where oneDNN only emulates bfloat16 or has none."""
    import platform
    import time

    monkeypatch.setattr(time, "perf_counter", lambda: pytest.fail("auto timed something"))
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    for avx512_bf16, amx, onednn, expected in ((True, False, True, torch.bfloat16), (False, True, True, torch.bfloat16),
                                               (False, False, True, torch.float32), (True, True, False, torch.float32)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda v=onednn: v)
        assert [resolve_dtype("auto") for _ in range(3)] == [expected] * 3  # same machine, same answer
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")  # an older torch: no such query
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert resolve_dtype("auto") is torch.float32


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
