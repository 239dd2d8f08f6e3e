"""Label a corpus with one few-shot task, chunk by chunk, resumable: the local engine of `tart classify`.

    spec = TaskSpec.from_examples(texts, labels, embedder="minilm-l6")
    classify_corpus(spec, "tickets.csv", output="labels.jsonl", text_column="body", resume=True)

- The task is fitted once: its examples are embedded once (or their embeddings come from the service's
  task store), and a TartClassifier is fitted on those vectors; each chunk is then embedded and
  predicted. Classifier, projection and ensemble are the library's, fitted as the service fits them
  (`random_state=0`), and queries never see each other: the same labels in any chunking.
- Results go to a journal, OUTPUT.partial (JSON lines, flushed and fsynced after each chunk). Its ids
  are the record of what is done: `resume` reads them, drops a torn last line (a write cut by a kill),
  and labels only the rest. When the corpus is done the journal becomes OUTPUT, renamed (.jsonl) or
  converted to Parquet (.parquet) through a temporary file, so OUTPUT only ever exists whole and an
  unfinished run is always marked by the .partial name.
- Memory is one chunk plus the set of ids (duplicates are refused; resuming goes by ids).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tart.defaults import DEFAULT_EMBEDDER, DEFAULT_HEAD, DEFAULT_N_PERMUTATIONS
from tart.corpus.reader import count_rows, import_pyarrow, read_corpus
from tart.data.label_names import name_texts
from tart.paths import atomic_write

OUTPUT_SUFFIXES = (".jsonl", ".parquet")


@dataclass
class TaskSpec:
    """A fitted task in a form that travels (Ray ships it to each actor): the examples' embeddings and
    labels, and the names of the embedder and head that go with them."""

    support: np.ndarray  # (k, dim) the examples' embeddings
    labels: list
    names: np.ndarray | None = None  # (C, dim) the labels' names embedded, in sorted_labels order; None: no names
    unlabeled: np.ndarray | None = None  # (U, dim) texts of the corpus without labels (a sample), embedded
    embedder: str = DEFAULT_EMBEDDER
    head: str = DEFAULT_HEAD
    n_permutations: int = DEFAULT_N_PERMUTATIONS
    embed_dtype: str | None = None  # None: $TART_EMBED_DTYPE, else "auto", as the service
    device: str = "cpu"  # where the embedder runs ("cuda" on a Ray GPU actor); the head stays on the CPU

    @classmethod
    def from_examples(cls, texts: list[str], labels: list, embedder: str = DEFAULT_EMBEDDER, label_names="auto",
                      unlabeled: list[str] = (), **kw) -> "TaskSpec":
        """Embed the examples, the labels' names (`label_names` as TartClassifier's) and the unlabelled
        texts, in one call."""
        return cls.from_embeddings(None, labels, embedder, label_names, unlabeled, texts=list(texts), **kw)

    @classmethod
    def from_embeddings(cls, support: np.ndarray | None, labels: list, embedder: str = DEFAULT_EMBEDDER,
                        label_names="auto", unlabeled: list[str] = (), texts: list[str] = (), **kw) -> "TaskSpec":
        """Examples embedded already (a registered task's store): only the names and unlabelled texts are
        embedded here (and `texts`, the examples, where support is None)."""
        names = [] if label_names is None else name_texts(labels, label_names, embedder)
        todo = list(texts) + names + list(unlabeled)
        vectors = _embedder(embedder, kw.get("embed_dtype"), kw.get("device", "cpu")).embed(todo) if todo else None
        k, c = len(texts), len(names)
        return cls(support=vectors[:k] if support is None else support, labels=list(labels),
                   names=vectors[k:k + c] if c else None, unlabeled=vectors[k + c:] if len(unlabeled) else None,
                   embedder=embedder, **kw)

    def load(self) -> "Labeller":
        return Labeller(self)


def _embedder(name: str, dtype, device: str):
    from tart.lm.embedder import Embedder

    # an Embedder of our own (the model itself is shared in the process) without a progress bar of its own,
    # and without a text cache: a corpus pass never repeats a chunk, so the cache would only hold memory
    return Embedder(name, progress=False, dtype=dtype, device=device, cache_size=0)


class Labeller:
    """A task ready in one process: the embedder loaded and the classifier fitted once; texts -> probabilities."""

    def __init__(self, spec: TaskSpec):
        from tart.classifier import TartClassifier

        self.embedder = _embedder(spec.embedder, spec.embed_dtype, spec.device)
        self.clf = TartClassifier(head=spec.head, embedder=None, n_permutations=spec.n_permutations,
                                  random_state=0, label_names=None if spec.names is None else "auto",
                                  ).fit(spec.support, spec.labels, unlabeled=spec.unlabeled, name_vectors=spec.names)
        self.classes = self.clf.classes_.tolist()

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.clf.predict_proba(self.embedder.embed(texts))


# -- output ---------------------------------------------------------------------------------------

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


RESULT_KEYS = {"id", "label", "scores"}  # a result line holds exactly these (result_rows)


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


def _resume_from(output: Path, journal: Path, resume: bool) -> set[str]:
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


def _finish(journal: Path, output: Path, classes: list) -> None:
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


# -- the job --------------------------------------------------------------------------------------

def classify_corpus(spec: TaskSpec, texts: str, output: str | None = None, text_column: str = "text",
                    id_column: str | None = None, chunk_size: int = 512, resume: bool = False,
                    progress: bool | None = None, labeller: Labeller | None = None) -> dict:
    """Label every row of `texts` (see tart.corpus.reader) into `output` (.jsonl or .parquet), or print JSON
    lines (with the text) to standard output when output is None. Returns counts and timings."""
    check_output(output, resume)
    out = Path(output) if output else None
    journal = journal_path(out) if out else None
    done = _resume_from(out, journal, resume) if out else set()
    t0 = time.perf_counter()
    labeller = labeller or spec.load()
    t_ready = time.perf_counter()
    total = count_rows(texts) if texts != "-" else None

    from tqdm.auto import tqdm

    # progress=None: a bar only when standard error is a terminal (tqdm's rule)
    bar = tqdm(total=total, initial=len(done), unit="texts", desc="classify", file=sys.stderr,
               disable=None if progress is None else not progress)
    sink = open(journal, "a", encoding="utf-8") if out else sys.stdout
    n_new, t_embed_predict = 0, 0.0
    try:
        for ids, chunk in read_corpus(texts, text_column, id_column, chunk_size, skip=done):
            t = time.perf_counter()
            rows = result_rows(ids, labeller(chunk), labeller.classes)
            t_embed_predict += time.perf_counter() - t
            if out:
                sink.write("".join(json.dumps(r) + "\n" for r in rows))
                sink.flush()
                os.fsync(sink.fileno())  # a chunk counts as done only once it is on disk
            else:
                for r, text in zip(rows, chunk):
                    scores = {c: round(p, 4) for c, p in r["scores"].items()}
                    print(json.dumps({"id": r["id"], "text": text, "label": r["label"], "scores": scores}))
            n_new += len(rows)
            bar.update(len(rows))
    except ValueError as err:
        if out:
            sink.close()
            if done or n_new:
                raise ValueError(f"{err} (the {len(done) + n_new} rows labelled so far are in {journal}; "
                                 "fix the input and pass --resume to continue)") from None
            journal.unlink()  # nothing was written: leave nothing behind
        raise
    finally:
        bar.close()
        if out:
            sink.close()
    if out:
        if not done and not n_new:
            journal.unlink()
            raise ValueError(f"{texts}: no texts to classify")
        _finish(journal, out, labeller.classes)
    elif not n_new:
        raise ValueError(f"{texts}: no texts to classify")
    return {"texts": n_new, "resumed_from": len(done), "load_seconds": t_ready - t0,
            "seconds": time.perf_counter() - t_ready, "embed_predict_seconds": t_embed_predict}
