"""`tart ...`: the console entry point, one module per command.

Every command module has the same two functions: `add_arguments(parser)` and `run(args)`. Only the
command being run is imported (its options with it), so `tart --help` and `tart classify` load no other
command, and none of them imports torch or transformers at module level: the library is imported
when a command runs. `tart --embed-backend onnx COMMAND ...` runs every embedder of the command in ONNX
Runtime (the same as TART_EMBED_BACKEND=onnx; see tart.lm.onnx); by default (`auto`) each embedder call
runs in the fastest faithful runtime for its shape (tart.lm.backends).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from tart.defaults import EMBED_BACKENDS  # no torch: names only

# command -> (its module, what `tart --help` says of it), in the order `tart --help` lists them
COMMANDS = {
    "train": ("tart.cli.train", "train a reasoning head on synthetic tasks"),
    "eval-synthetic": ("tart.cli.eval_synthetic", "head vs logistic regression vs oracle on fresh synthetic tasks"),
    "classify": ("tart.cli.classify", "classify texts or a whole corpus few-shot (streamed, resumable)"),
    "evaluate": ("tart.cli.evaluate", "TART vs the other few-shot methods on one dataset"),
    "compare": ("tart.cli.compare", "every method x embedder x k on several datasets: one table"),
    "serve": ("tart.serving.cli", "serve few-shot classification over HTTP (BentoML)"),
    "analyze": ("tart.cli.analyze", "analyses that explain models: invariance, slices, emergence, components"),
}


def add_commands(parser: argparse.ArgumentParser, commands: dict, dest: str, argv: list[str] | None) -> None:
    """One sub-command per entry of `commands`. Only the modules of commands named in `argv` are imported
    (all when argv is None): each adds its options and runs the command, or has commands of its own
    (`SUBCOMMANDS`, like `tart analyze NAME`)."""
    sub = parser.add_subparsers(dest=dest, required=True)
    for name, (module, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if argv is None or name in argv:
            command = importlib.import_module(module)
            if hasattr(command, "SUBCOMMANDS"):
                add_commands(p, command.SUBCOMMANDS, command.DEST, argv)
            else:
                command.add_arguments(p)
                p.set_defaults(func=command.run)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tart", description="TART: few-shot classification with a reasoning head")
    # a global option, so every command that embeds (classify, evaluate, compare, analyze) follows it
    parser.add_argument("--embed-backend", dest="global_embed_backend", choices=EMBED_BACKENDS,
                        help="embedder runtime for this command (default: $TART_EMBED_BACKEND, else auto: "
                             "per call, the fastest faithful one for its shape)")
    add_commands(parser, COMMANDS, "command", argv)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    if args.global_embed_backend:
        os.environ["TART_EMBED_BACKEND"] = args.global_embed_backend
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        command = " ".join(filter(None, [args.command, getattr(args, "analysis", None)]))
        print(f"tart {command}: error: {err}", file=sys.stderr)
        return 2
    return 0
