"""`tart compare`: one table of accuracy and seconds per task, every method × embedder × k."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tart.cli.args import name_list
from tart.cli.evaluate import add_run_options, set_threads
from tart.defaults import DEFAULT_CAUSAL_LM, DEFAULT_EMBEDDER


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=name_list, default=None,
                   help="comma-separated bundled dataset names or files (default: every bundled dataset)")
    p.add_argument("--embedders", type=name_list, default=[DEFAULT_CAUSAL_LM, DEFAULT_EMBEDDER],
                   help=f"comma-separated embedder short names or folders (default {DEFAULT_CAUSAL_LM},{DEFAULT_EMBEDDER})")
    add_run_options(p)
    p.add_argument("--merge", type=name_list, default=None,
                   help="comma-separated JSON files of earlier compare runs: one table from all their reports, "
                        "nothing is run")
    p.add_argument("--json", help="write the result (table rows and every report) here")
    p.add_argument("--markdown", help="write the table here (Markdown)")


def run(args) -> None:
    from tart.data.datasets import list_datasets
    from tart.evaluate.compare import compare, format_comparison, merge

    if args.merge:
        result = merge([json.loads(Path(f).read_text()) for f in args.merge])
        del result["reports"]  # they stay in the merged files: no second copy
        result["sources"] = args.merge
        _write(args, result, format_comparison(result))
        return

    set_threads(args.threads)

    def save(partial):  # after every report: a long run that stops early keeps what it measured
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            partial.update(test_size=args.test_size, setfit_iterations=args.setfit_iterations)
            Path(args.json).write_text(json.dumps(partial, indent=2) + "\n")

    result = compare(args.data or list_datasets(), args.embedders, args.methods, ks=args.k, seeds=args.seeds,
                     progress=not args.quiet, checkpoint=args.checkpoint, test_size=args.test_size or None,
                     n_permutations=args.permutations, icl_max_tokens=args.icl_max_tokens,
                     setfit_iterations=args.setfit_iterations, on_report=save)
    result.update(test_size=args.test_size, setfit_iterations=args.setfit_iterations)
    _write(args, result, format_comparison(result))


def _write(args, result: dict, table: str) -> None:
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table + "\n")
    print(table)
