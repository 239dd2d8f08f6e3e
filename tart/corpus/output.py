"""Where `tart classify` writes, so that no row is lost: the journal and the output.

Results go to a journal, OUTPUT.partial (JSON lines, flushed and fsynced after each chunk by the job).
Its ids are the record of what is done: `resume_from` reads them, drops a torn last line (a write cut
by a kill), and the job labels only the rest. When the corpus is done the journal becomes OUTPUT
(`finish`), renamed (.jsonl) or converted to Parquet (.parquet) through a temporary file, so OUTPUT
only ever exists whole and an unfinished run is always marked by the .partial name. A file that is
not ours is refused before anything renames or cuts it (`check_output`).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from tart.corpus.reader import import_pyarrow
from tart.paths import atomic_write

OUTPUT_SUFFIXES = (".jsonl", ".parquet")
RESULT_KEYS = {"id", "label", "scores"}  # a result line holds exactly these (result_rows)


def journal_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}.partial")


def result_rows(ids, proba: np.ndarray, classes: list) -> list[dict]:
    return [{"id": i, "label": classes[int(np.argmax(p))], "scores": {str(c): float(v) for c, v in zip(classes, p)}}
            for i, p in zip(ids, proba)]


def arrow_table(rows: list[dict], classes: list):
    """Parquet rows: id (string), label, scores (a struct with one float field per class)."""
    pa = import_pyarrow()
    try:
        label_type = pa.array(classes).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed label types: written as strings
        label_type = pa.string()
    labels = [r["label"] if label_type != pa.string() else str(r["label"]) for r in rows]
    scores = pa.StructArray.from_arrays(
        [pa.array([r["scores"][str(c)] for r in rows], pa.float64()) for c in classes], [str(c) for c in classes])
    return pa.table({"id": pa.array([str(r["id"]) for r in rows], pa.string()),
                     "label": pa.array(labels, label_type), "scores": scores})


def scan_journal(path: Path, finished: bool = False) -> tuple[set[str], int]:
    """The ids a journal holds (as strings), and the bytes of its whole lines. Reads only: a file that is
    not a tart classify journal is an error here, before anything renames or cuts it. A last line without
    its newline was cut by a kill (a finished output, written whole, has none)."""
    done, good = set(), 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n") and not finished:
                break
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or set(row) != RESULT_KEYS or not isinstance(row["scores"], dict):
                    raise ValueError
            except ValueError:  # json's errors are ValueErrors too
                raise ValueError(f"{path} line {number}: not a result line; this file is not a tart classify "
                                 "output or journal (or it was edited), and is left as it is") from None
            done.add(str(row["id"]))
            good += len(line)
    return done, good


def read_journal(path: Path) -> set[str]:
    """The ids a journal holds, with a last line cut by a kill cut off the file (its row is labelled again)."""
    done, good = scan_journal(path)
    if good != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good)
    return done


def check_output(output: str | None, resume: bool) -> None:
    """Everything about --output that can be known before a model loads: its suffix, that its folder exists
    and can be written, and that what is already there is ours to continue (--resume) or is refused."""
    if output is None:
        if resume:
            raise ValueError("--resume needs --output: the output file is the record of what is done")
        return
    out = Path(output)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"--output {output}: unknown suffix; expected .jsonl or .parquet")
    if out.suffix.lower() == ".parquet":
        import_pyarrow()  # say so now, not after the corpus is labelled
    folder = out.parent
    if not folder.is_dir():
        raise ValueError(f"--output {output}: folder {folder} does not exist")
    try:  # a real write (os.access says yes to root, and knows nothing of read-only mounts); leaves nothing
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise ValueError(f"--output {output}: cannot write in folder {folder} ({err.strerror})") from None
    journal = journal_path(out)
    for path in (out, journal):
        if path.is_dir():
            raise ValueError(f"--output {output}: {path} is a directory; name a .jsonl or .parquet file")
    if not resume:
        for path in (out, journal):
            if path.exists():
                what = "an unfinished run's results" if path == journal else "a file of that name"
                raise FileExistsError(f"{path} exists ({what}); pass --resume to continue the run that wrote "
                                      "it, or remove it")
        return
    # --resume: the journal, else a finished output, must be ours; checked by reading, nothing renamed yet
    if journal.exists():
        scan_journal(journal)
    elif out.exists() and out.suffix.lower() == ".jsonl":
        scan_journal(out, finished=True)
    elif out.exists():
        _read_parquet_output(out)


def _read_parquet_output(path: Path):
    """A finished Parquet output's table and label names; anything else is refused, untouched."""
    pq = import_pyarrow().parquet
    try:
        table = pq.read_table(path)
        scores = table.schema.field("scores").type
        names = [scores.field(i).name for i in range(scores.num_fields)]
        if set(table.schema.names) != RESULT_KEYS:
            raise ValueError
    except Exception:  # pyarrow's own errors (not Parquet, no such field, not a struct) have no common base
        raise ValueError(f"{path}: not a tart classify output (columns id, label, scores), and is left "
                         "as it is") from None
    return table, names


def resume_from(output: Path, journal: Path, resume: bool) -> set[str]:
    """The ids already done, with the journal ready to append to (check_output has vetted both files)."""
    if not resume:
        return set()
    if journal.exists():
        return read_journal(journal)
    if output.exists():  # a finished run: its rows become the journal again, new rows are added to it
        if output.suffix.lower() == ".jsonl":
            output.replace(journal)
        else:
            table, names = _read_parquet_output(output)
            with atomic_write(journal, encoding="utf-8") as f:
                for row in table.to_pylist():
                    f.write(json.dumps({"id": row["id"], "label": row["label"],
                                        "scores": {n: row["scores"][n] for n in names}}) + "\n")
            output.unlink()
        return read_journal(journal)
    return set()


def finish(journal: Path, output: Path, classes: list) -> None:
    """The journal becomes the output, whole or not at all."""
    if output.suffix.lower() == ".jsonl":
        journal.replace(output)
        return
    pq = import_pyarrow().parquet
    writer = None
    with open(journal, encoding="utf-8") as f, atomic_write(output, "wb") as sink:
        while True:
            rows = [json.loads(line) for _, line in zip(range(8192), f)]
            if not rows:
                break
            table = arrow_table(rows, classes)
            writer = writer or pq.ParquetWriter(sink, table.schema)
            writer.write_table(table)
        if writer is None:  # nothing to label: an empty file with the schema
            writer = pq.ParquetWriter(sink, arrow_table([], classes).schema)
        writer.close()  # the footer; the sink stays open for atomic_write to sync and rename
    journal.unlink()
