"""A corpus to label, read in chunks: CSV / JSONL / Parquet / plain text, a text column, optional ids.

    for ids, texts in read_corpus("tickets.csv", text_column="body", id_column="ticket_id", chunk_size=512):
        ...

Only one chunk is in memory at a time (and the set of ids seen, to refuse duplicates: an id is what
`--resume` goes by). Every row is checked as it is read, and a bad one stops the read with an error
naming the file, the row and the column:
- without an id column, a row's id is its line number (CSV: the line its record starts on; Parquet:
  its row number, from 1); plain text has no columns: one text per line, blank lines skipped;
- a text must be a non-empty string; an id a string or an integer, and unique.
Parquet needs pyarrow (`pip install "tart[parquet]"`), imported only for Parquet files.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

from tart.data.readers import is_blank, iter_csv, iter_json_lines, not_utf8

TABLE_SUFFIXES = (".csv", ".jsonl", ".parquet")


def corpus_format(path: str) -> str:
    """'csv', 'jsonl', 'parquet' or 'text' (any other suffix, or - for standard input)."""
    suffix = Path(path).suffix.lower() if path != "-" else ""
    if suffix == ".json":
        raise ValueError(f"{path}: a .json corpus cannot be streamed; write one object per line as .jsonl")
    return suffix.lstrip(".") if suffix in TABLE_SUFFIXES else "text"


def import_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401  (the submodule is not loaded by `import pyarrow`)
    except ImportError:
        raise ValueError('Parquet needs pyarrow: pip install "tart[parquet]" (or pyarrow)') from None
    return pyarrow


def count_rows(path: str) -> int | None:
    """Rows to label, when cheap to know (for the progress bar): Parquet metadata, lines of JSONL /
    plain text (an upper bound where lines are blank); None for CSV (records may span lines) and stdin."""
    fmt = corpus_format(path)
    if path == "-" or fmt == "csv":
        return None
    if fmt == "parquet":
        return import_pyarrow().parquet.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _rows(path: str, fmt: str, columns: list[str]):
    """(id if no id column: line or row number, {column: value}) for every row, in file order."""
    if fmt == "csv":
        yield from iter_csv(Path(path))
    elif fmt == "jsonl":
        with open(path, encoding="utf-8-sig", newline="\n") as f:  # lines split at \n only, as JSONL says
            yield from iter_json_lines(Path(path), f)
    elif fmt == "parquet":
        pq = import_pyarrow().parquet
        file = pq.ParquetFile(path)
        missing = [c for c in columns if c not in file.schema_arrow.names]
        if missing:
            raise ValueError(f"{path}: column {missing[0]!r} not found; columns found: "
                             f"{', '.join(file.schema_arrow.names)}")
        number = 0
        for batch in file.iter_batches(batch_size=4096, columns=columns):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    elif path == "-":
        # bytes, decoded here: sys.stdin's own decoding depends on the locale (and may hand undecodable
        # bytes on as lone surrogates, which the tokenizer then fails on)
        for number, raw in enumerate(sys.stdin.buffer, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise not_utf8("standard input", [raw], first=number) from None
            if line.strip():
                yield number, {"text": line.strip()}
    else:
        with open(path, encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    yield number, {"text": line.strip()}


def read_corpus(path: str, text_column: str = "text", id_column: str | None = None, chunk_size: int = 512,
                skip: set | None = None):
    """Chunks of (ids, texts), at most chunk_size rows each, in file order. Rows whose str(id) is in
    `skip` (done by an earlier run) are checked like the others but not returned."""
    fmt = corpus_format(path)
    if path != "-" and not Path(path).is_file():  # "-": standard input
        raise FileNotFoundError(f"no such file: {path!r}")
    if fmt == "text":
        text_column, id_column = "text", None  # plain text: the line is the text, its number the id
    columns = [text_column] + ([id_column] if id_column else [])
    try:
        yield from _checked_chunks(path, fmt, text_column, id_column, columns, chunk_size, skip)
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def _checked_chunks(path, fmt, text_column, id_column, columns, chunk_size, skip):
    seen: set = set()
    ids, texts = [], []
    for line, row in _rows(path, fmt, columns):
        where = f"{'standard input' if path == '-' else path} {'row' if fmt == 'parquet' else 'line'} {line}"
        for column in columns:
            if column not in row:
                raise ValueError(f"{where}: column {column!r} not found; "
                                 f"columns found: {', '.join(map(str, row)) or '(none)'}")
        text = row[text_column]
        if not isinstance(text, str):
            raise ValueError(f"{where}: text in column {text_column!r} must be a string, got {text!r}")
        if is_blank(text):
            raise ValueError(f"{where}: empty text in column {text_column!r} (nothing but whitespace or "
                             "invisible characters)")
        key = row[id_column] if id_column else line
        if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
            raise ValueError(f"{where}: id in column {id_column!r} must be a non-empty string or an integer, "
                             f"got {key!r}")
        if str(key) in seen:
            raise ValueError(f"{where}: id {key!r} in column {id_column!r} was already used by an earlier row; "
                             "ids must be unique (resuming goes by them)")
        seen.add(str(key))
        if skip and str(key) in skip:
            continue
        ids.append(key)
        texts.append(text)
        if len(texts) == chunk_size:
            yield ids, texts
            ids, texts = [], []
    if texts:
        yield ids, texts


def check_corpus(path: str, text_column: str = "text", id_column: str | None = None, sample: int = 0,
                 seed: int = 0) -> tuple[int, list[str]]:
    """Read the whole corpus once, checking every row as read_corpus does: a bad row, an unreadable file
    or an empty one fails here, before a model loads, not after some chunks. Returns the row count and a
    uniform sample of at most `sample` texts (reservoir sampling, seeded: the unlabelled pool a head reads)."""
    rng = random.Random(seed)
    n, reservoir = 0, []
    for _, texts in read_corpus(path, text_column, id_column, chunk_size=4096):
        for text in texts:
            if len(reservoir) < sample:
                reservoir.append(text)
            elif sample and (j := rng.randrange(n + 1)) < sample:
                reservoir[j] = text
            n += 1
    if not n:
        raise ValueError(f"{path}: no texts to classify")
    return n, reservoir
