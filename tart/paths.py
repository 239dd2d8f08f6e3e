"""Where TART writes, as Hugging Face does: the user's cache and data folders (platformdirs).

- `cache_dir()`: converted models (GGUF → safetensors). `TART_CACHE_DIR` overrides it.
- `store_path()`: the SQLite file of registered tasks (`tart serve`). `TART_STORE_PATH` overrides it.
- `save_array(path, array)`: a cached .npy written whole or not at all.
Nothing is written inside the installed package. In the current folder only `tart train` writes by
default (`checkpoints/<config name>`, see tart/cli/train.py); everything else writes there only to a path
a user names.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    from platformdirs import user_cache_path

    return Path(os.environ.get("TART_CACHE_DIR") or user_cache_path("tart"))


def store_path() -> Path:
    from platformdirs import user_data_path

    return Path(os.environ.get("TART_STORE_PATH") or user_data_path("tart") / "tasks.sqlite3")


def save_array(path: Path, array) -> None:
    """np.save through a temporary file and a rename: a killed run never leaves a half-written cache file."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)
