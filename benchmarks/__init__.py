"""Benchmarks: scripts that print numbers (ratios against a baseline measured in the same run). Run each from
the repository root as a module, e.g. `python -m benchmarks.serve_load`."""
from __future__ import annotations

import json
from pathlib import Path


def write_json(path: str | None, report: dict, indent: int = 2) -> None:
    """A benchmark's report as one JSON object at `path` (its folder made if needed); nothing without a path."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=indent) + "\n")
