"""Where TART writes, as Hugging Face does: the user's cache and data folders (platformdirs).

- `cache_dir()`: converted models (GGUF → safetensors). `TART_CACHE_DIR` overrides it.
- `store_path()`: the SQLite file of registered tasks (`tart serve`). `TART_STORE_PATH` overrides it.
- `atomic_path(path)` / `atomic_write(path)`: a file or folder written whole or not at all (a temporary
  one beside it, renamed into place): the caches (.npy, converted models, ONNX exports), the task bank,
  training checkpoints and `tart classify`'s Parquet output.
- `save_array(path, array)`: a cached .npy written so.
- `file_stamp(path)`: a file's size and modification time, what a cache key holds to change when the file does.
Nothing is written inside the installed package. In the current folder only `tart train` writes by
default (`checkpoints/<config name>`, see tart/cli/train.py); everything else writes there only to a path
a user names.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


def cache_dir() -> Path:
    from platformdirs import user_cache_path

    return Path(os.environ.get("TART_CACHE_DIR") or user_cache_path("tart"))


def store_path() -> Path:
    from platformdirs import user_data_path

    return Path(os.environ.get("TART_STORE_PATH") or user_data_path("tart") / "tasks.sqlite3")


def file_stamp(path: str | os.PathLike) -> str:
    """`size|mtime_ns` of a file: it changes when the file is rewritten (a key part; the bytes are not read)."""
    st = Path(path).stat()
    return f"{st.st_size}|{st.st_mtime_ns}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path` (same folder, so same filesystem) for the block to write a file or
    create a folder at; when the block ends it is renamed onto `path` (os.replace: readers see the old
    version or the whole new one, never a part). If the block or the rename raises, the temporary is
    removed and `path` is as it was. A folder replaces only a missing or empty one: os.replace refuses a
    full one with OSError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")  # unique: writers never share one
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs):
    """`open(path, mode)` written whole or not at all (see atomic_path): the block writes to a temporary
    file, which is flushed and fsynced to disk before it is renamed onto `path`."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def save_array(path: Path, array) -> None:
    """np.save, whole or not at all: a killed run never leaves a half-written cache file."""
    import numpy as np

    with atomic_write(path, "wb") as f:
        np.save(f, array)
