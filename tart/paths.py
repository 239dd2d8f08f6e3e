"""Where TART writes, as Hugging Face does: the user's cache and data folders (platformdirs).

- `cache_dir()`: converted models (GGUF → safetensors). `TART_CACHE_DIR` overrides it.
- `store_path()`: the SQLite file of registered tasks (`tart serve`). `TART_STORE_PATH` overrides it.
Nothing is ever written inside the installed package or the checkout unless a user names the path.
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
