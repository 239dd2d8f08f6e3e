"""`tart ...`: the console entry point, one module per command.

Each command module defines `add_parser(subparsers)` and imports nothing heavy at module level, so
`tart --help` never loads torch or transformers; the library is imported when a command runs.
`tart --embed-backend onnx COMMAND ...` runs every embedder of the command in ONNX Runtime (the same as
TART_EMBED_BACKEND=onnx; see tart.lm.onnx).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from tart.defaults import EMBED_BACKENDS  # no torch: names only

# command modules under tart.cli, in the order `tart --help` lists them
COMMANDS = ["train", "eval_synthetic", "classify", "evaluate", "compare", "serve", "analyze"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tart", description="TART: few-shot classification with a reasoning head")
    # a global option, so every command that embeds (classify, evaluate, compare, analyze) follows it
    parser.add_argument("--embed-backend", dest="global_embed_backend", choices=EMBED_BACKENDS,
                        help="embedder runtime for this command (default: $TART_EMBED_BACKEND, else torch)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"tart.cli.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.global_embed_backend:
        os.environ["TART_EMBED_BACKEND"] = args.global_embed_backend
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        command = " ".join(filter(None, [args.command, getattr(args, "analysis", None)]))
        print(f"tart {command}: error: {err}", file=sys.stderr)
        return 2
    return 0
