"""`tart eval-synthetic [--checkpoint DIR]`: the head vs logistic regression vs the oracle on fresh tasks;
with `--families`, also the head vs each prior family's natural baseline (tart.evaluate.prior_families)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tart.cli.args import int_list


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="head folder or shipped name (default: the default head)")
    p.add_argument("--k", type=int_list, default=[8, 16, 32, 64])
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--d", type=int, default=None, help="active dimension (default: 16, TART's, or the head's n_dims if smaller)")
    p.add_argument("--alpha", type=float, default=None, help="weight scale (default: the head's training alpha)")
    p.add_argument("--permutations", type=int, default=1, help="average the head over this many support orders")
    p.add_argument("--families", action="store_true",
                   help="also score the head on each prior family (gaussian, linear, mlp) against LR, LDA, centroid, Bayes")
    p.add_argument("--family-tasks", type=int, default=200, help="tasks per family and k for --families")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--plot", help="write accuracy vs k here (PNG)")


def run(args) -> None:
    from tart.evaluate.synthetic import evaluate_synthetic, plot_synthetic
    from tart.head.load import load_head

    head = load_head(args.checkpoint)
    d = args.d if args.d is not None else min(16, head.config.n_dims)
    report = evaluate_synthetic(head, args.k, n_tasks=args.tasks, seed=args.seed, d=d, alpha=args.alpha,
                                permutations=args.permutations)
    if args.families:
        from tart.evaluate.prior_families import evaluate_families

        report["families"] = evaluate_families(head, args.k, n_tasks=args.family_tasks)["results"]
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    if args.plot:
        plot_synthetic(report, args.plot)
    print(text)
