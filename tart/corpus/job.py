"""Label a corpus with one few-shot task, chunk by chunk, resumable: the local engine of `tart classify`.

    spec = TaskSpec.from_examples(texts, labels, embedder="minilm-l6")
    classify_corpus(spec, "tickets.csv", output="labels.jsonl", text_column="body", resume=True)

- The task is fitted once: its examples are embedded once (or their embeddings come from the service's
  task store), and a TartClassifier is fitted on those vectors; each chunk is then embedded and
  predicted. Classifier, projection and ensemble are the library's, fitted as the service fits them
  (`random_state=0`), and queries never see each other: the same labels in any chunking.
- Results go to a journal that becomes the output only when the corpus is done (tart.corpus.output):
  `resume` labels only the rows the journal does not hold, and the output only ever exists whole.
- Memory is one chunk plus the set of ids (duplicates are refused; resuming goes by ids).
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tart.corpus.output import check_output, finish, journal_path, result_rows, resume_from
from tart.corpus.reader import count_rows, read_corpus
from tart.data.label_names import name_texts
from tart.defaults import DEFAULT_EMBEDDER, DEFAULT_HEAD, DEFAULT_N_PERMUTATIONS


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


def classify_corpus(spec: TaskSpec, texts: str, output: str | None = None, text_column: str = "text",
                    id_column: str | None = None, chunk_size: int = 512, resume: bool = False,
                    progress: bool | None = None, labeller: Labeller | None = None, total: int | None = None) -> dict:
    """Label every row of `texts` (see tart.corpus.reader) into `output` (.jsonl or .parquet), or print JSON
    lines (with the text) to standard output when output is None. `total`: the corpus's rows when a check
    pass has counted them (the progress bar's end), else counted here when cheap. Returns counts and timings."""
    check_output(output, resume)
    out = Path(output) if output else None
    journal = journal_path(out) if out else None
    done = resume_from(out, journal, resume) if out else set()
    t0 = time.perf_counter()
    labeller = labeller or spec.load()
    t_ready = time.perf_counter()
    if total is None and texts != "-":
        total = count_rows(texts)

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
        finish(journal, out, labeller.classes)
    elif not n_new:
        raise ValueError(f"{texts}: no texts to classify")
    return {"texts": n_new, "resumed_from": len(done), "load_seconds": t_ready - t0,
            "seconds": time.perf_counter() - t_ready, "embed_predict_seconds": t_embed_predict}
