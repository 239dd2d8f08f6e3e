"""`tart analyze emergence`: mutual information across a model's blocks (tart/analysis/emergence.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tart.analysis.emergence import emergence, plot_emergence, read_texts
from tart.defaults import DEFAULT_CAUSAL_LM


def _layers(text: str):
    if text == "all":
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--layers: expected 'all' or comma-separated block indices, got {text!r}")


def run(args) -> None:
    import json

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = read_texts(args.texts, args.text_column)
    if args.max_texts and len(texts) > args.max_texts:  # a seeded sample: bundled sets are sorted by class
        keep = np.random.default_rng(args.seed).choice(len(texts), args.max_texts, replace=False)
        texts = [texts[i] for i in sorted(keep)]
    report = emergence(texts, args.model, layers=_layers(args.layers), positions=args.positions, dim=args.dim,
                       steps=args.steps, batch_size=args.batch_size, hidden=args.hidden, ema_rate=args.ema_rate,
                       seed=args.seed, repeats=args.repeats, progress=not args.quiet)
    report["texts"] = args.texts
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    if args.plot:
        plot_emergence(report, args.plot)
    print(text if not args.json else json.dumps({k: report[k] for k in ("best_layer", "best_embedding_layer", "seconds")}))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_CAUSAL_LM, help="causal LM: short name or local folder")
    p.add_argument("--texts", required=True, help="bundled dataset name, .csv/.jsonl/.json, or a file with one text per line")
    p.add_argument("--text-column", default="text")
    p.add_argument("--max-texts", type=int, default=400, help="seeded random subset of this many texts (0 = all)")
    p.add_argument("--layers", default="all", help="'all' or comma-separated block indices")
    p.add_argument("--positions", type=int, default=4, help="first P token positions for the micro level")
    p.add_argument("--dim", type=int, default=4, help="random-projection size of each state")
    p.add_argument("--steps", type=int, default=500, help="MINE Adam steps per estimate")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--hidden", type=int, default=64, help="width of the statistics network")
    p.add_argument("--ema-rate", type=float, default=0.01, help="moving-average rate of the gradient correction")
    p.add_argument("--repeats", type=int, default=1, help="MINE runs averaged per estimate (their sd is reported)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--plot", help="write the emergence-by-layer plot here (PNG)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
