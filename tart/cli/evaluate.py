"""`tart evaluate --data D --k 16,32,64 --seeds 5 --methods ...`: the methods on one dataset, one JSON report."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tart.cli.args import int_list, name_list
from tart.defaults import DEFAULT_CAUSAL_LM, DEFAULT_N_PERMUTATIONS
from tart.evaluate.splits import SKLEARN_DATASETS  # numpy and the data loaders: no torch
from tart.methods import METHODS  # the registry alone: no torch


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="bundled dataset name, .csv/.jsonl/.json file, or sklearn:NAME "
                   f"for vectors ({', '.join(SKLEARN_DATASETS)})")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    add_run_options(p)
    p.add_argument("--embedder", default=DEFAULT_CAUSAL_LM,
                   help="model short name or path (ignored for sklearn:); a causal LM, so that in-context prompting runs too")
    p.add_argument("--embedding-mode", default="stream", choices=["stream", "vanilla", "loo", "leave-one-out"])
    p.add_argument("--layer", type=int, default=-1,
                   help="hidden layer the embedder pools (default -1: the last; 0 = the token embeddings)")
    p.add_argument("--json", help="write the report here (else it is printed)")
    p.add_argument("--plot", help="write accuracy vs k here (PNG)")
    p.add_argument("--predictions", help="write every test prediction here (JSONL, one line per example and run)")


def add_run_options(p) -> None:
    """Options `tart evaluate` and `tart compare` share."""
    p.add_argument("--k", type=int_list, default=[16, 32, 64], help="support-set sizes (default 16,32,64)")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1), default 5")
    p.add_argument("--methods", type=name_list, default=["tart", "logreg", "centroid", "icl"],
                   help=f"comma-separated, from {', '.join(METHODS)} (icl, icl-cal, comprw: causal LMs only)")
    p.add_argument("--checkpoint", default=None, help="head folder or shipped name (default: the shipped head)")
    p.add_argument("--test-size", type=int, default=200, help="test examples per seed (default 200; 0 = all)")
    p.add_argument("--permutations", type=int, default=DEFAULT_N_PERMUTATIONS, help="support orders TART averages over")
    p.add_argument("--icl-max-tokens", type=int, default=None, help="prompt budget for icl (default: model context)")
    p.add_argument("--setfit-iterations", type=int, default=20,
                   help="SetFit's contrastive pairs per example (default 20, SetFit's own)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (1 is much faster when other jobs keep the cores busy)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def set_threads(n) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def run(args) -> None:
    from tart.evaluate import evaluate, load_eval_data
    from tart.evaluate.report import format_table, plot_report, write_predictions

    set_threads(args.threads)
    data = load_eval_data(args.data, args.text_column, args.label_column)
    embedder = None
    if data.vectors is None:
        from tart.lm.embedder import load_embedder

        embedder = load_embedder(args.embedder, layer=args.layer, progress=not args.quiet)
    predictions = [] if args.predictions else None
    report = evaluate(data, ks=args.k, seeds=args.seeds, methods=args.methods, embedder=embedder,
                      checkpoint=args.checkpoint, test_size=args.test_size or None,
                      embedding_mode=args.embedding_mode,  # leave-one-out too: tart.lm.embedder.resolve_mode
                      n_permutations=args.permutations, icl_max_tokens=args.icl_max_tokens,
                      setfit_iterations=args.setfit_iterations, progress=not args.quiet, predictions=predictions)
    if args.predictions:
        write_predictions(predictions, args.predictions)
    if args.plot:
        plot_report(report, args.plot)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"{report['dataset']} · {report['embedder'] or 'vectors'} · test {report['test_size']}\n"
              + format_table(report) + "".join(f"\nnote: {n}" for n in report["notes"]))
    else:
        print(json.dumps(report, indent=2))
