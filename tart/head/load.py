"""Loading a shipped head by folder or short name, from safetensors only.

Shipped heads live in the repository's top-level checkpoints/ folder, which installs as the package
data `tart/checkpoints/` (see pyproject.toml): a short name resolves in either place.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from tart.defaults import DEFAULT_HEAD
from tart.memo import once
from tart.paths import file_stamp


def _shipped_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # tart/
    installed = package / "checkpoints"  # pip install . (package data)
    return installed if installed.is_dir() else package.parent / "checkpoints"  # checkout


CHECKPOINTS = _shipped_dir()


def resolve_checkpoint(name_or_path: str | Path | None = None) -> Path:
    name_or_path = name_or_path or DEFAULT_HEAD
    path = Path(name_or_path)
    if not path.exists() and (CHECKPOINTS / str(name_or_path)).exists():
        path = CHECKPOINTS / str(name_or_path)
    if not path.is_dir():
        shipped = sorted(p.parent.name for p in CHECKPOINTS.glob("*/config.json")) if CHECKPOINTS.is_dir() else []
        raise FileNotFoundError(f"no head checkpoint at {name_or_path!r} (shipped: {shipped or 'none'})")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: not a saved head")
    if not any(path.glob("*.safetensors")):
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        hint = f" (found {', '.join(pickled)}: pickle files are never loaded)" if pickled else ""
        raise FileNotFoundError(f"{path} has no .safetensors weights{hint}")
    return path


def load_head(name_or_path: str | Path | None = None):
    """The head as a `TartReasoningModel` in eval mode (importing it registers it with AutoModel).

    Loaded once per process per folder (tart.memo), so a short name and its folder's path share one copy
    (clone() and cross-validation reuse it too). The copy is shared, so it is frozen: its parameters need
    no gradient, and training it in place fails (`tart.head.warm_start.warm_start` copies from it into a
    new head). A folder whose weights or config were rewritten since loads again."""
    folder = resolve_checkpoint(name_or_path).resolve()
    return once(("head", str(folder), _saved_state(folder)), lambda: _load_head(folder))


def head_digest(name_or_path: str | Path | None = None) -> str:
    """A short digest of what a head computes with: its config and its weights (a report's rows name it)."""
    sha = hashlib.sha1()
    for p in _head_files(resolve_checkpoint(name_or_path)):
        sha.update(p.name.encode())
        sha.update(p.read_bytes())
    return sha.hexdigest()[:12]


def _head_files(folder: Path) -> list[Path]:
    """The files a head loads from: its config and its safetensors weights."""
    return sorted(p for p in folder.iterdir() if p.name == "config.json" or ".safetensors" in p.name)


def _saved_state(folder: Path) -> tuple:
    """Name and stamp (size, modification time) of the files a head loads from: they change when it is re-saved."""
    return tuple((p.name, file_stamp(p)) for p in _head_files(folder))


def _load_head(folder: Path):
    from tart.head.model import TartReasoningModel

    return TartReasoningModel.from_pretrained(folder).eval().requires_grad_(False)
