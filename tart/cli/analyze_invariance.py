"""`tart analyze invariance`: shared invariances of target models with a reference (tart/analysis/invariance.py)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tart.analysis.invariance import PERTURBATIONS, SOFT_CUTOFF, SOFT_TOL, plot_report, run_invariance
from tart.cli.args import add_labelled_data_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reference", default="tart", help="model spec METHOD[:EMBEDDER] of M1 (default tart)")
    p.add_argument("--target", action="append", required=True,
                   help="model spec of M2; repeat for several targets")
    add_labelled_data_args(p, n=200)
    p.add_argument("--perturbations", default=",".join(PERTURBATIONS), help="comma-separated: synonym,typo")
    p.add_argument("--candidates", type=int, default=3, help="perturbations tried per text (default 3)")
    p.add_argument("--soft-tol", type=float, default=SOFT_TOL, help=f"Soft-SCoPE full credit up to this distance ({SOFT_TOL})")
    p.add_argument("--soft-cutoff", type=float, default=SOFT_CUTOFF, help=f"no credit from this distance on ({SOFT_CUTOFF})")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--json", help="write the report here (else it is printed)")
    p.add_argument("--plot", help="write the bar plot here (PNG)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args) -> None:
    from tart.data.datasets import load_dataset

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = load_dataset(args.data, args.text_column, args.label_column)
    kinds = [s.strip() for s in args.perturbations.split(",") if s.strip()]
    report = run_invariance(data, args.reference, args.target, k=args.k, n=args.n, seed=args.seed,
                            perturbations=kinds, n_candidates=args.candidates, tol=args.soft_tol,
                            cutoff=args.soft_cutoff, n_boot=args.bootstrap)
    if args.plot:
        plot_report(report, args.plot)
    text = json.dumps(report, indent=2) + "\n"
    if not args.json:
        print(text, end="")
        return
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(text)
    for r in report["results"]:
        print(f"{r['perturbation']:8s} {r['target']:24s} n={r['n']:4d} hard={r['hard']} soft={r['soft']}")
