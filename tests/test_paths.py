"""Where TART writes (platformdirs, with TART_* overrides) and where shipped heads resolve from."""
from pathlib import Path

import pytest

from tart import paths
from tart.head import load as checkpoint_io


def test_user_folders_and_overrides(monkeypatch, tmp_path):
    from platformdirs import user_cache_path, user_data_path

    monkeypatch.delenv("TART_CACHE_DIR", raising=False)
    monkeypatch.delenv("TART_STORE_PATH", raising=False)
    assert paths.cache_dir() == user_cache_path("tart")
    assert paths.store_path() == user_data_path("tart") / "tasks.sqlite3"
    monkeypatch.setenv("TART_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("TART_STORE_PATH", str(tmp_path / "s.sqlite3"))
    assert (paths.cache_dir(), paths.store_path()) == (tmp_path / "c", tmp_path / "s.sqlite3")
    from tart.lm.registry import default_cache_dir

    assert default_cache_dir() == tmp_path / "c" and default_cache_dir(tmp_path / "x") == tmp_path / "x"


def test_shipped_heads_resolve_by_name_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    path = checkpoint_io.resolve_checkpoint()  # the default head
    assert path.name == checkpoint_io.DEFAULT_HEAD and (path / "config.json").is_file()
    assert path.parent == checkpoint_io.CHECKPOINTS
    with pytest.raises(FileNotFoundError, match=f"shipped: \\[.*'{checkpoint_io.DEFAULT_HEAD}'"):
        checkpoint_io.resolve_checkpoint("no-such-head")
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text("{}")
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="pickle files are never loaded"):
        checkpoint_io.resolve_checkpoint(Path("pickled"))


def test_a_loaded_head_is_shared_and_frozen_and_reloads_when_rewritten(tmp_path):
    """load_head memoises one copy per folder: it is frozen (training it in place fails), and a folder
    saved again loads again."""
    import torch

    from tart.head.model import TartConfig, TartReasoningModel

    torch.manual_seed(0)
    TartReasoningModel(TartConfig(n_layer=1, n_embd=16, n_head=2)).save_pretrained(tmp_path / "h")
    head = checkpoint_io.load_head(tmp_path / "h")
    assert checkpoint_io.load_head(str(tmp_path / "h")) is head
    assert not any(p.requires_grad for p in head.parameters())
    with pytest.raises(RuntimeError, match="does not require grad"):
        head.read_in.weight.sum().backward()
    torch.manual_seed(1)
    TartReasoningModel(TartConfig(n_layer=1, n_embd=16, n_head=2)).save_pretrained(tmp_path / "h")
    again = checkpoint_io.load_head(tmp_path / "h")
    assert again is not head and not torch.equal(again.read_in.weight, head.read_in.weight)


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path):
    path = tmp_path / "sub" / "out.json"
    with paths.atomic_write(path) as f:  # makes the folder
        f.write("old")
    with pytest.raises(RuntimeError, match="midway"):
        with paths.atomic_write(path) as f:
            f.write("new, half written")
            raise RuntimeError("midway")
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["out.json"]
    with paths.atomic_write(path, "wb") as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and len(list(path.parent.iterdir())) == 1


def test_atomic_path_folder(tmp_path):
    final = tmp_path / "step-1"
    with pytest.raises(KeyboardInterrupt):  # any exception, not only an Exception
        with paths.atomic_path(final) as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text("part")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with paths.atomic_path(final) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("all")
    assert (final / "weights").read_text() == "all" and list(tmp_path.iterdir()) == [final]
    with pytest.raises(OSError):  # a full folder is never replaced: the caller decides (tart.lm.registry)
        with paths.atomic_path(final) as tmp:
            tmp.mkdir()
    assert list(tmp_path.iterdir()) == [final]


def test_save_array_round_trip(tmp_path):
    import numpy as np

    paths.save_array(tmp_path / "x.npy", np.arange(3))
    assert np.load(tmp_path / "x.npy").tolist() == [0, 1, 2] and len(list(tmp_path.iterdir())) == 1


def test_file_stamp_changes_when_the_file_is_rewritten(tmp_path):
    import os

    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    first = paths.file_stamp(f)
    assert first == paths.file_stamp(str(f)) and first.startswith("3|")
    f.write_bytes(b"abcd")
    os.utime(f, ns=(1, 1))
    assert paths.file_stamp(f) == "4|1" != first
