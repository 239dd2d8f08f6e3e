"""Labelled text datasets: the small bundled ones and CSV / JSONL / JSON loaders.

    data = load_dataset("wordnet-animal-food")          # bundled, see list_datasets()
    data = load_dataset("reviews.jsonl", text_column="review", label_column="stars")
    support, test = balanced_split(data, k=16, seed=0)

Bundled files live in tart/data/bundled/ (rebuilt by scripts/build_datasets.py; sources
and licences in tart/data/bundled/LICENSES.md).
"""
from __future__ import annotations

import csv
import json
import os
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS_DIR = Path(__file__).parent / "bundled"
_LABEL_TYPES = (str, int, bool)  # JSON label values that make sensible classes
CSV_FIELD_LIMIT = 2**31 - 1  # characters: the largest the csv module takes on every platform (a C long)


def sorted_labels(labels) -> list:
    """The distinct labels in their canonical order, the one every method's `classes_` follows: sorted by
    type name first, so mixed types still sort (1 before "a"); where even that cannot order them (tuples
    holding unorderable values), in order of first appearance."""
    distinct = list(dict.fromkeys(labels))
    try:
        return sorted(distinct, key=lambda v: (type(v).__name__, v))
    except TypeError:
        return distinct


@dataclass
class LabelledTexts:
    """Texts and their labels, aligned by position."""

    name: str
    texts: list[str]
    labels: list

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.texts)} texts but {len(self.labels)} labels")

    @property
    def classes(self) -> list:
        """The distinct labels, sorted (`sorted_labels`)."""
        return sorted_labels(self.labels)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "LabelledTexts":
        return LabelledTexts(self.name, [self.texts[i] for i in indices],
                             [self.labels[i] for i in indices])


def is_blank(text: str) -> bool:
    """A text with nothing to read: only whitespace, control characters and invisible format characters
    (zero-width spaces and joiners, byte order marks, soft hyphens: Unicode categories Cc and Cf). A
    tokenizer drops them all, so such a text would be classified from no tokens at all."""
    return all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text)


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


def read_lines(path: str | os.PathLike) -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped (one text per line)."""
    lines = (line.strip() for line in read_text(Path(path)).splitlines())
    return [line for line in lines if line]


def read_text(path: Path) -> str:
    """A UTF-8 file's text (a byte order mark dropped); anything else is an error naming the line."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def not_utf8(path: Path | str, lines=None, first: int = 1) -> ValueError:
    """The error for input that is not UTF-8 text, naming its first line that does not decode. The line is
    found by reading the bytes again (a decoder reads in blocks and knows no lines); `lines` are the raw
    lines from line `first` on, when they cannot be read again (standard input)."""
    if lines is None:
        with open(path, "rb") as f:
            return not_utf8(path, f)
    for number, line in enumerate(lines, start=first):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            return ValueError(f"{path} line {number}: not UTF-8 text (byte 0x{line[err.start]:02x} at "
                              f"column {err.start + 1}); save it as UTF-8")
    return ValueError(f"{path}: not UTF-8 text; save it as UTF-8")


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
    if path.is_dir():
        raise ValueError(f"{path} is a directory, expected a .csv / .jsonl / .json file")

    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _read_csv(path)
    elif suffix == ".jsonl":
        rows = _read_jsonl(path)
    elif suffix == ".json":
        rows = _read_json(path)
    else:
        raise ValueError(f"{path}: unknown extension {path.suffix!r}; "
                         "expected .csv, .jsonl or .json")
    return path, rows


def _read_csv(path: Path) -> list[tuple[int, dict]]:
    return list(iter_csv(path))


def iter_csv(path: Path):
    """(line where the record starts, row) pairs, one at a time; the first row is the header.

    Parsed strictly: a quote that is never closed is an error, not a field that swallows the rest of the
    file (the csv module's default reads to the end of the file inside the quote and drops every later row).
    """
    # a field may be as long as a JSON line's text may (the csv module's default stops at 128 KiB); an
    # embedder reads only its first max-length tokens of either
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, strict=True)
        header = None
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError:
                raise not_utf8(path) from None
            except csv.Error as err:
                if "unexpected end of data" in str(err):
                    raise ValueError(f"{path} line {start}: malformed CSV (a quote opened in this record is "
                                     "never closed)") from None
                raise ValueError(f"{path} line {start}: malformed CSV ({err})") from None
            if not fields:  # blank line
                continue
            if header is None:
                header = fields
                continue
            if len(fields) > len(header):
                raise ValueError(f"{path} line {start}: {len(fields)} fields, "
                                 f"but the header has {len(header)}")
            fields += [""] * (len(header) - len(fields))  # short row: missing values
            yield start, dict(zip(header, fields))
    if header is None:
        raise ValueError(f"{path} is empty: no header row")


def _parse_json_lines(path: Path, text: str) -> list[tuple[int, dict]]:
    return list(iter_json_lines(path, text.splitlines()))


def iter_json_lines(path: Path, lines):
    """(line number, object) pairs from an iterable of JSON lines, one at a time; blank lines skipped."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} line {number}: malformed JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path} line {number}: expected a JSON object, "
                             f"got {type(row).__name__}")
        yield number, row


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    return _parse_json_lines(path, read_text(path))


def _read_json(path: Path) -> list[tuple[int, dict]]:
    text = read_text(path)
    if not text.strip():
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # several values: JSON lines under a .json name
            return _parse_json_lines(path, text)
        raise ValueError(f"{path} line {err.lineno}: malformed JSON ({err.msg})") from None
    if isinstance(value, dict):  # a single object
        return [(1, value)]
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ValueError(f"{path}: expected a JSON list of objects (or one object per line)")
    return [(i, row) for i, row in enumerate(value, start=1)]  # "line" = item number here


def balanced_split(data: LabelledTexts, k: int, seed: int,
                   test_size: int | None = None) -> tuple[LabelledTexts, LabelledTexts]:
    """A class-balanced support set of k examples, and a test set from the rest (`balanced_indices`)."""
    support, test = balanced_indices(data.labels, k, seed, test_size)
    return data.subset(support), data.subset(test)


def balanced_indices(labels, k: int, seed: int, test_size: int | None = None,
                     sampler: str = "python") -> tuple[list[int], list[int]]:
    """Positions in `labels` of a class-balanced support set of k examples and of a test set from the rest.

    Each class gets k // n_classes examples; the k % n_classes left over go one each to
    classes picked at random (seeded). The support set is shuffled so the classes are
    interleaved. The test set is every other example (in the original order), or a seeded
    random sample of test_size of them (in the original order too).

    `sampler` names the seeded draws, each kept so that the splits of reports made with it can be drawn
    again: "python" (`random.Random(seed)`: `tart evaluate`, the analyses) or "numpy"
    (`numpy.random.default_rng(seed)`, which shuffles the support after drawing the test set: the dev suite).
    """
    if sampler not in ("python", "numpy"):
        raise ValueError(f"sampler must be 'python' or 'numpy', got {sampler!r}")
    classes = sorted_labels(labels)
    if k < len(classes):
        raise ValueError(f"k={k} is smaller than the number of classes ({len(classes)}): "
                         "every class needs at least one support example")
    rng = np.random.default_rng(seed) if sampler == "numpy" else random.Random(seed)

    def sample(items, n) -> list:
        return rng.choice(items, n, replace=False).tolist() if sampler == "numpy" else rng.sample(items, n)

    per_class = [k // len(classes)] * len(classes)
    for c in sample(range(len(classes)), k % len(classes)):
        per_class[c] += 1
    support = []
    for c, n in zip(classes, per_class):
        members = [i for i, label in enumerate(labels) if label == c]
        if len(members) < n:
            raise ValueError(f"class {c!r} has {len(members)} examples, fewer than the {n} needed for k={k}")
        support += sample(members, n)
    if sampler == "python":
        rng.shuffle(support)

    chosen = set(support)
    test = [i for i in range(len(labels)) if i not in chosen]
    if test_size is not None:
        if not 0 < test_size <= len(test):
            raise ValueError(f"test_size={test_size} must be between 1 and the "
                             f"{len(test)} examples left after the support set")
        test = sorted(sample(test, test_size))
    if sampler == "numpy":
        support = rng.permutation(support).tolist()
    return support, test
