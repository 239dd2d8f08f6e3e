"""`tart ...`: the console entry point. Each subcommand is a thin wrapper over a library function."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def cmd_train(args):
    from tart.training.config import load_config
    from tart.training.train import train

    config = load_config(args.config)
    output = Path(args.output or Path("checkpoints") / config.name)
    summary = train(config, output, resume=args.resume, progress=not args.quiet)
    print(json.dumps({k: v for k, v in summary.items() if k != "machine"}))


def cmd_eval_synthetic(args):
    from tart.checkpoint_io import load_head
    from tart.synthetic_eval import evaluate_synthetic, plot_synthetic

    head = load_head(args.checkpoint)
    report = evaluate_synthetic(head, args.k, n_tasks=args.tasks, seed=args.seed, d=args.d, alpha=args.alpha,
                                permutations=args.permutations)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    if args.plot:
        plot_synthetic(report, args.plot)
    print(text)


def _read_lines(path: str) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def cmd_classify(args):
    from tart.classifier import TartClassifier
    from tart.data import load_dataset

    examples = load_dataset(args.examples, text_column=args.text_column, label_column=args.label_column)
    texts = _read_lines(args.texts) if args.texts != "-" else [l.strip() for l in sys.stdin if l.strip()]
    if not texts:
        raise ValueError(f"{args.texts}: no texts to classify (one text per line)")
    clf = TartClassifier(head=args.checkpoint, embedder=args.embedder, n_permutations=args.permutations)
    probs = clf.fit(examples.texts, examples.labels).predict_proba(texts)
    classes = clf.classes_.tolist()
    for text, row in zip(texts, probs):
        scores = {str(c): round(float(p), 4) for c, p in zip(classes, row)}
        print(json.dumps({"text": text, "label": classes[int(row.argmax())], "scores": scores}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tart", description="TART: few-shot classification with a reasoning head")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a reasoning head on synthetic tasks")
    p.add_argument("--config", required=True, help="TOML file, e.g. training/configs/compact.toml")
    p.add_argument("--output", help="output folder (default: checkpoints/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint under --output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval-synthetic", help="head vs logistic regression vs oracle on fresh synthetic tasks")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--k", type=_int_list, default=[8, 16, 32, 64])
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--d", type=int, default=None, help="active dimension (default: the head's n_dims)")
    p.add_argument("--alpha", type=float, default=None, help="weight scale (default: the head's training alpha)")
    p.add_argument("--permutations", type=int, default=1, help="average the head over this many support orders")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--plot", help="write accuracy vs k here (PNG)")
    p.set_defaults(func=cmd_eval_synthetic)

    p = sub.add_parser("classify", help="classify texts few-shot from a file of labelled examples")
    p.add_argument("--checkpoint", default="tart-compact", help="head: shipped name or folder")
    p.add_argument("--embedder", default="smollm2-135m", help="short name or local model folder")
    p.add_argument("--examples", required=True, help="labelled examples: CSV/JSONL file or bundled dataset name")
    p.add_argument("--texts", required=True, help="file with one text per line, or - for standard input")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--permutations", type=int, default=4, help="support orders averaged")
    p.set_defaults(func=cmd_classify)

    from tart.serving.cli import add_serve_parser
    from tart.analysis.cli import add_analyze_parser
    from tart.evaluate import add_evaluate_parser

    add_evaluate_parser(sub)
    add_serve_parser(sub)
    add_analyze_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        command = " ".join(filter(None, [args.command, getattr(args, "analysis", None)]))
        print(f"tart {command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
