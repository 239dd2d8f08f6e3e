"""Public labelled datasets of user-written text: intents, emotions, questions, spam, reviews, news.

Users classify what people write; the task bank's other sources are written by programmers. These
datasets close that gap. Each has a *role*: `bank` datasets are task-bank sources (training), `dev`
datasets are dev-suite tasks (choices), never both (leave-one-source-out). Where each comes from
(repository, commit, paths), its licence and its size are in training/user_text_manifest.json; the
texts are rebuilt from saved snapshots by scripts/build_user_text.py into `$TART_CACHE_DIR/user-text/`.
"""
from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

MANIFEST = Path(__file__).with_name("user_text_manifest.json")


def data_dir() -> Path:
    from tart.paths import cache_dir

    return cache_dir() / "user-text"


def datasets(role: str | None = None) -> list[dict]:
    """The manifest's entries, of one role ("bank" or "dev") or all."""
    entries = json.loads(MANIFEST.read_text())["datasets"]
    return [e for e in entries if role is None or e["role"] == role]


def read(name: str, root: Path | None = None) -> dict[str, list[str]]:
    """One dataset's texts by label."""
    path = (root or data_dir()) / f"{name}.jsonl.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: rebuild the user-text datasets with "
                                "`python scripts/build_user_text.py` (from the snapshots the manifest names)")
    by_label = defaultdict(list)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            by_label[row["label"]].append(row["text"])
    return dict(by_label)
