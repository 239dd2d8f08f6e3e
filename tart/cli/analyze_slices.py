"""`tart analyze slices`: per-slice accuracy and routing from `tart evaluate --predictions` files (tart/analysis/slices.py)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tart.analysis.slices import RULES, format_table, plot_report
from tart.analysis.slices import run as run_slices


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tart.cli.args import int_list

    p.add_argument("--predictions", nargs="+", required=True, metavar="[NAME=]FILE",
                   help="JSONL files from tart evaluate --predictions (NAME prefixes the file's models)")
    p.add_argument("--k", type=int_list, help="keep only these k values (comma-separated)")
    p.add_argument("--models", help="comma-separated models to compare, e.g. tart@k16,logreg@k16")
    p.add_argument("--data", help="dataset name or file with the texts (default: the records' dataset)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--tags-column", help="column with the user's tags, separated by --tag-sep")
    p.add_argument("--tag-sep", default=";", help="tag separator in --tags-column (default ;)")
    p.add_argument("--rules", default=",".join(RULES),
                   help=f"comma-separated rule slices from {','.join(RULES)}, or none (default: all)")
    p.add_argument("--min-size", type=int, default=5, help="drop slices with fewer items (default 5)")
    p.add_argument("--alpha", type=float, default=0.01, help="significance level (default 0.01)")
    p.add_argument("--json", help="write the report here (else it is printed)")
    p.add_argument("--plot", help="write the heatmap + routing panel here (PNG)")


def run(args) -> None:
    rules = [] if args.rules.strip().lower() == "none" else [r.strip() for r in args.rules.split(",") if r.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    report = run_slices(args.predictions, ks=args.k, models=models, data=args.data, text_column=args.text_column,
                 label_column=args.label_column, tags_column=args.tags_column, tag_sep=args.tag_sep,
                 rules=rules, min_size=args.min_size, alpha=args.alpha)
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        plot_report(report, args.plot)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(format_table(report) + "".join(f"\nnote: {n}" for n in report["notes"]))
    else:
        print(json.dumps(report, indent=2))
