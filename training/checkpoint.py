"""Resumable training state without pickle: model and optimizer tensors in safetensors, the rest JSON.

A checkpoint is written to a temporary folder and renamed into place (tart.paths.atomic_path), so a folder
named step-N is always complete: a run killed mid-write leaves only a .step-N.*.tmp folder, which is
ignored and cleaned.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tart.paths import atomic_path

PREFIX = "step-"


def _flatten_optimizer(state_dict: dict) -> tuple[dict, dict]:
    tensors, scalars = {}, {}
    for pid, pstate in state_dict["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"scalars": scalars, "param_groups": state_dict["param_groups"]}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict = {}
    for flat, value in [*tensors.items(), *meta["scalars"].items()]:
        pid, key = flat.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(root: Path, step: int, model, optimizer, trainer_state: dict, keep: int = 2) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:07d}"
    with atomic_path(final) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tensors, meta = _flatten_optimizer(optimizer.state_dict())
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps(meta))
        (tmp / "trainer_state.json").write_text(json.dumps({**trainer_state, "step": step}))
        if final.exists():  # the same step saved again: the rename needs its place free
            shutil.rmtree(final)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def load_checkpoint(path: Path, model, optimizer) -> dict:
    """Load model and optimizer state in place; return the trainer state (step, elapsed, ...)."""
    weights = load_file(str(path / "model.safetensors"))
    model.load_state_dict(weights)
    meta = json.loads((path / "optimizer.json").read_text())
    optimizer.load_state_dict(_unflatten_optimizer(load_file(str(path / "optimizer.safetensors")), meta))
    return json.loads((path / "trainer_state.json").read_text())


def clean_temporary(root: Path) -> None:
    if root.is_dir():
        for p in root.glob(f".{PREFIX}*.tmp"):  # atomic_path's temporary folders
            shutil.rmtree(p, ignore_errors=True)
