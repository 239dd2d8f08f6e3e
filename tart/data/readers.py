"""Reading users' files: UTF-8 text (errors name the line), CSV / JSONL / JSON rows, and what counts as
a text with nothing to read."""
from __future__ import annotations

import csv
import json
import os
import unicodedata
from pathlib import Path

CSV_FIELD_LIMIT = 2**31 - 1  # characters: the largest the csv module takes on every platform (a C long)


def is_blank(text: str) -> bool:
    """A text with nothing to read: only whitespace, control characters and invisible format characters
    (zero-width spaces and joiners, byte order marks, soft hyphens: Unicode categories Cc and Cf). A
    tokenizer drops them all, so such a text would be classified from no tokens at all."""
    return all(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text)


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


def read_table(path: Path) -> list[tuple[int, dict]]:
    """A .csv / .jsonl / .json file's rows as (line, {column: value}) pairs, in file order."""
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
    return rows


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
