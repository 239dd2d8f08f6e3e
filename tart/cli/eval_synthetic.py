"""`tart eval-synthetic --checkpoint DIR`: the head vs logistic regression vs the oracle on fresh tasks."""
from __future__ import annotations

import json
from pathlib import Path

from tart.cli.args import int_list


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval-synthetic", help="head vs logistic regression vs oracle on fresh synthetic tasks")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--k", type=int_list, default=[8, 16, 32, 64])
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--d", type=int, default=None, help="active dimension (default: the head's n_dims)")
    p.add_argument("--alpha", type=float, default=None, help="weight scale (default: the head's training alpha)")
    p.add_argument("--permutations", type=int, default=1, help="average the head over this many support orders")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--plot", help="write accuracy vs k here (PNG)")
    p.set_defaults(func=run)


def run(args) -> None:
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
