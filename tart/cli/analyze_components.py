"""`tart analyze components`: per-component accuracy and component reweighting (tart/analysis/components.py)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tart.analysis.components import accuracy_grid, analyze, load_lm, plot_heatmap
from tart.cli.args import add_labelled_data_args
from tart.defaults import DEFAULT_CAUSAL_LM


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_CAUSAL_LM, help="causal LM: embedder short name or local folder")
    add_labelled_data_args(p, n=100)
    p.add_argument("--n-demos", type=int, default=4, help="support examples in the decomposed prompt; "
                   "the other k - n_demos train the component weights")
    p.add_argument("--epochs", type=int, default=2000)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--l1", type=float, default=0.01)
    p.add_argument("--json", help="write the report here (else it is printed)")
    p.add_argument("--plot", help="write the layer × head accuracy heatmap here (PNG)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> None:
    from tart.data.datasets import load_dataset
    from tart.data.splits import balanced_split

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.k < 1 or args.n < 1:
        raise ValueError(f"--k and --n must be positive, got k={args.k}, n={args.n}")
    data = load_dataset(args.data, args.text_column, args.label_column)
    if len(data.classes) < 2:
        raise ValueError(f"{data.name}: one class only ({data.classes[0]!r}); need at least two")
    support, evaluated = balanced_split(data, args.k, args.seed, test_size=args.n)
    lm, tokenizer = load_lm(args.model)
    report = analyze(lm, tokenizer, support, evaluated, n_demos=args.n_demos, seed=args.seed,
                     progress=not args.quiet, epochs=args.epochs, lr=args.lr, l1=args.l1)
    report["model"] = args.model
    if args.plot:
        where = [(r["kind"], r["layer"], r["head"]) for r in report["components"]]
        grid = accuracy_grid(np.array([r["accuracy"] for r in report["components"]]), where)
        biased = accuracy_grid(np.array([r["label_biased"] for r in report["components"]], dtype=float), where)
        plot_heatmap(grid, biased, report["full_model_accuracy"], 1.0 / len(report["classes"]),
                     f"{data.name} · {args.model} · {report['prompt_examples']}-shot prompt · n={len(evaluated)}",
                     args.plot)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
        a = report["accuracy"]
        print(f"{data.name}: full model ({report['prompt_examples']}-shot) {a['full_model_prompt_examples']:.3f}, "
              f"comprw {a['comprw']:.3f}, icl ({args.k}-shot) {a['icl']:.3f}, icl-cal {a['icl_cal']:.3f}; "
              f"{len(report['better_than_full_model'])} components beat the full model "
              f"({report['better_than_full_model_not_label_biased']} not label-biased); "
              f"decomposition error {report['decomposition_max_abs_error']:.2e}")
    else:
        print(text)
