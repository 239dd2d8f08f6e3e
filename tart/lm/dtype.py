"""In which dtype an embedder's weights run: asked for (argument or $TART_EMBED_DTYPE), or `auto`,
decided from what the hardware reports."""
from __future__ import annotations

import os
import platform

import torch

from tart.defaults import EMBED_DTYPES


def dtype_setting(dtype=None) -> str:
    """The embedder dtype asked for: `dtype`, else $TART_EMBED_DTYPE (read here only), else "auto"."""
    name = str(dtype or os.environ.get("TART_EMBED_DTYPE") or "auto").replace("torch.", "")
    if name not in EMBED_DTYPES:
        raise ValueError(f"embedder dtype must be one of {', '.join(EMBED_DTYPES)}, not {name!r}")
    return name


def bf16_supported(device: str = "cpu") -> bool:
    """Whether bfloat16 weights run natively here (CPU: oneDNN's bf16 support, e.g. AVX-512 BF16/AMX)."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_preferred(device: str = "cpu") -> bool:
    """What `auto` takes, from what the hardware reports (never a timing: a timing on a busy machine
    came out either way, and the same texts must get the same vectors after a restart): bfloat16 on a
    GPU that supports it, and on a CPU with native bfloat16 instructions (x86: AVX-512 BF16 or AMX;
    elsewhere oneDNN's own check). Measured on this project's 2-core VM, which has AVX-512 BF16 and no
    AMX: 1.9-2.4x float32's texts/s (docs/embedder-backends.md); one earlier run there measured 0.6-0.9x."""
    if not bf16_supported(device):
        return False
    if str(device).startswith("cuda") or platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    # oneDNN also says "supported" on plain AVX-512, where bfloat16 is emulated and slow
    native = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check is not None and check() for check in native)


def resolve_dtype(dtype=None, device: str = "cpu") -> torch.dtype:
    """Weights' dtype: `dtype`, else $TART_EMBED_DTYPE, else auto (see bf16_preferred).
    The pooled vectors are float32 either way."""
    name = dtype_setting(dtype)
    if name == "auto":
        name = "bfloat16" if bf16_preferred(device) else "float32"
    return getattr(torch, name)
