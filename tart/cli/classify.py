"""`tart classify --examples FILE --texts FILE`: label texts few-shot, one JSON line per text."""
from __future__ import annotations

import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("classify", help="classify texts few-shot from a file of labelled examples")
    p.add_argument("--checkpoint", default=None, help="head: shipped name or folder (default: the shipped head)")
    p.add_argument("--embedder", default="smollm2-135m", help="short name or local model folder")
    p.add_argument("--examples", required=True, help="labelled examples: CSV/JSONL file or bundled dataset name")
    p.add_argument("--texts", required=True, help="file with one text per line, or - for standard input")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--permutations", type=int, default=4, help="support orders averaged")
    p.set_defaults(func=run)


def run(args) -> None:
    from tart.checkpoint_io import DEFAULT_HEAD
    from tart.classifier import TartClassifier
    from tart.data import load_dataset, read_lines

    examples = load_dataset(args.examples, text_column=args.text_column, label_column=args.label_column)
    texts = read_lines(args.texts) if args.texts != "-" else [line.strip() for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError(f"{args.texts}: no texts to classify (one text per line)")
    clf = TartClassifier(head=args.checkpoint or DEFAULT_HEAD, embedder=args.embedder,
                         n_permutations=args.permutations)
    probs = clf.fit(examples.texts, examples.labels).predict_proba(texts)
    classes = clf.classes_.tolist()
    for text, row in zip(texts, probs):
        scores = {str(c): round(float(p), 4) for c, p in zip(classes, row)}
        print(json.dumps({"text": text, "label": classes[int(row.argmax())], "scores": scores}))
