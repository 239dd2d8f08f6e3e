"""Labelled text datasets: the small bundled ones by name, and a user's CSV / JSONL / JSON file.

    data = load_dataset("wordnet-animal-food")          # bundled, see list_datasets()
    data = load_dataset("reviews.jsonl", text_column="review", label_column="stars")

Bundled files live in tart/data/bundled/ (rebuilt by scripts/build_datasets.py; sources
and licences in tart/data/bundled/LICENSES.md).
"""
from __future__ import annotations

import os
from pathlib import Path

from tart.data.labels import LabelledTexts
from tart.data.readers import is_blank, read_table

DATASETS_DIR = Path(__file__).parent / "bundled"
_LABEL_TYPES = (str, int, bool)  # JSON label values that make sensible classes


def list_datasets() -> list[str]:
    """Names of the bundled datasets."""
    return sorted(p.stem for p in DATASETS_DIR.glob("*.csv"))


def load_dataset(name_or_path: str | os.PathLike, text_column: str = "text",
                 label_column: str = "label") -> LabelledTexts:
    """Load a bundled dataset by name, or a .csv / .jsonl / .json file.

    CSV labels stay strings; JSON labels keep their JSON type (string, integer or boolean).
    A .json file holds either a list of objects or one object per line.
    """
    path, rows = read_rows(name_or_path)
    name = path.stem
    texts, labels = [], []
    for line, row in rows:
        where = f"{path} line {line}"
        for column in (text_column, label_column):
            if column not in row:
                raise ValueError(f"{where}: column {column!r} not found; "
                                 f"columns found: {', '.join(map(str, row)) or '(none)'}")
        text, label = row[text_column], row[label_column]
        if not isinstance(text, str):
            raise ValueError(f"{where}: text must be a string, got {text!r}")
        if is_blank(text):
            raise ValueError(f"{where}: empty text in column {text_column!r} (nothing but whitespace or "
                             "invisible characters)")
        if label is None or label == "" or not isinstance(label, _LABEL_TYPES):
            raise ValueError(f"{where}: label in column {label_column!r} must be a non-empty "
                             f"string, an integer or a boolean, got {label!r}")
        texts.append(text)
        labels.append(label)

    if not texts:
        raise ValueError(f"{path} is empty: no rows")
    data = LabelledTexts(name, texts, labels)
    if len(data.classes) < 2:
        raise ValueError(f"{path}: needs at least 2 distinct labels in column "
                         f"{label_column!r}, found only {data.classes!r}")
    return data


def read_rows(name_or_path: str | os.PathLike) -> tuple[Path, list[tuple[int, dict]]]:
    """The file behind a bundled name or path, and its rows as (line, {column: value}) pairs.

    Every column is kept (load_dataset keeps only text and label); rows are in file order, so
    row i here is example i of load_dataset on the same file.
    """
    path = Path(name_or_path)
    if not path.exists():
        if str(name_or_path) in list_datasets():
            path = DATASETS_DIR / f"{name_or_path}.csv"
        elif path.suffix or os.sep in str(name_or_path) or "/" in str(name_or_path):
            raise FileNotFoundError(f"no such file: {str(name_or_path)!r}")
        else:
            raise ValueError(f"unknown dataset {str(name_or_path)!r}; bundled datasets are: "
                             f"{', '.join(list_datasets())} (or give a path to a "
                             ".csv / .jsonl / .json file)")
    return path, read_table(path)
