"""`tart classify --examples FILE | --task ID --texts FILE [--output FILE] [--resume] [--engine local|ray]`.

Labels a corpus few-shot, streamed in chunks (tart.corpus.job; tart.corpus.ray_engine with --engine ray). The task
is fitted once, from a file of labelled examples or from a task registered with `tart serve` (its
examples' stored embeddings are used when they were made by the same embedder, as the service does).
Without --output, one JSON line per text on standard output.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tart.defaults import DEFAULT_EMBEDDER, DEFAULT_HEAD, DEFAULT_MAX_UNLABELED, DEFAULT_N_PERMUTATIONS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="head: shipped name or folder (default: the shipped head)")
    p.add_argument("--embedder", default=DEFAULT_EMBEDDER, help="short name or local model folder")
    task = p.add_mutually_exclusive_group(required=True)
    task.add_argument("--examples", help="labelled examples: CSV/JSONL file or bundled dataset name")
    task.add_argument("--task", metavar="ID", help="a task registered with `tart serve` (its SQLite store)")
    p.add_argument("--store", default=None, help="task store file (default: the server's, see tart.paths)")
    p.add_argument("--texts", required=True,
                   help="corpus: .csv / .jsonl / .parquet (a text column, an optional id column), or plain "
                        "text, one text per line (id = line number), or - for standard input")
    p.add_argument("--text-column", default="text", help="column of the texts (corpus, and examples by default)")
    p.add_argument("--examples-text-column", default=None, help="column of the examples' texts, if not --text-column")
    p.add_argument("--label-column", default="label", help="column of the examples' labels")
    p.add_argument("--id-column", default=None, help="corpus column of unique ids (default: line / row number)")
    p.add_argument("--output", default=None, help="results file, .jsonl or .parquet (default: JSON lines to stdout)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run into the same --output")
    p.add_argument("--label-names", default="auto", metavar="FILE|none",
                   help="what the labels mean: a JSON file {label: description}; 'none' reads no names "
                        "(default: each label's own name, '_' and '-' as spaces)")
    p.add_argument("--unlabeled-sample", type=int, default=DEFAULT_MAX_UNLABELED, metavar="N",
                   help="texts of the corpus (a seeded uniform sample) the head reads as the task's unlabelled "
                        "texts; 0: none (with --texts -: none, standard input is read once)")
    p.add_argument("--chunk-size", type=int, default=512, help="texts embedded and written at a time")
    p.add_argument("--permutations", type=int, default=DEFAULT_N_PERMUTATIONS, help="support orders averaged")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: a Ray Data pipeline (pip install 'tart[ray]')")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--actors", type=int, default=None, help="Ray: actors in the pool (default: one per GPU, else one per CPU but one)")


def read_label_names(value: str):
    """--label-names: "auto", "none" (None), or a JSON file's mapping label -> description."""
    if value in ("auto", "none"):
        return None if value == "none" else "auto"
    import json

    try:
        names = json.loads(Path(value).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"--label-names {value}: not a readable JSON file ({err})") from None
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        raise ValueError(f"--label-names {value}: must hold a JSON object {{label: description}}")
    return names


def load_spec(args, unlabeled: list[str] = ()):
    """The task, fitted once: from --examples, or from --task in the service's store; `unlabeled`: texts
    of the corpus the head reads without labels."""
    from tart.corpus.job import TaskSpec

    common = dict(head=str(args.checkpoint or DEFAULT_HEAD), n_permutations=args.permutations,
                  label_names=read_label_names(args.label_names), unlabeled=unlabeled)
    if args.examples:
        from tart.data.datasets import load_dataset

        examples = load_dataset(args.examples, text_column=args.examples_text_column or args.text_column, label_column=args.label_column)
        return TaskSpec.from_examples(examples.texts, examples.labels, embedder=args.embedder, **common)
    from tart.paths import store_path
    from tart.serving.store import TaskNotFound, TaskStore

    path = Path(args.store or store_path())
    if not path.exists():
        raise ValueError(f"--task {args.task}: no task store at {path} (register tasks with `tart serve`, "
                         "or name the store with --store)")
    try:
        task = TaskStore(path).get(args.task)
    except TaskNotFound:
        raise ValueError(f"--task: no task with id {args.task!r} in the store at {path}") from None
    if task.embedder == args.embedder:  # the stored embeddings are this embedder's: no re-embedding
        return TaskSpec.from_embeddings(task.embeddings, task.example_labels, embedder=args.embedder, **common)
    return TaskSpec.from_examples(task.texts, task.example_labels, embedder=args.embedder, **common)


def run(args) -> None:
    if args.chunk_size < 1:
        raise ValueError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    if args.unlabeled_sample < 0:
        raise ValueError(f"--unlabeled-sample must be >= 0, got {args.unlabeled_sample}")
    # what can be checked is checked now, before any model is loaded (that takes seconds; reading does not)
    n_rows, unlabeled = None, []
    if args.texts != "-":  # one pass: every row checked, counted (the progress bar's end), the pool sampled
        from tart.corpus.reader import check_corpus

        n_rows, unlabeled = check_corpus(args.texts, args.text_column, args.id_column, sample=args.unlabeled_sample)
    if args.engine == "ray":
        from tart.corpus.ray_engine import check_ray_job

        check_ray_job(args.texts, args.output, args.id_column, args.resume)
    else:
        from tart.corpus.output import check_output

        check_output(args.output, args.resume)
    spec = load_spec(args, unlabeled)
    if args.engine == "ray":
        from tart.corpus.ray_engine import classify_corpus_ray

        classify_corpus_ray(spec, args.texts, args.output, text_column=args.text_column,
                            id_column=args.id_column, chunk_size=args.chunk_size, address=args.address,
                            actors=args.actors, resume=args.resume)
        return
    from tart.corpus.job import classify_corpus

    classify_corpus(spec, args.texts, args.output, text_column=args.text_column, id_column=args.id_column,
                    chunk_size=args.chunk_size, resume=args.resume, total=n_rows)
