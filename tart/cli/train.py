"""`tart train --config FILE [--output DIR] [--resume]`: train a reasoning head on synthetic tasks."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="TOML file, e.g. training/configs/compact.toml")
    p.add_argument("--output", help="output folder (default: checkpoints/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint under --output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> None:
    from tart.training.config import load_config
    from tart.training.train import train

    config = load_config(args.config)
    output = Path(args.output or Path("checkpoints") / config.name)
    summary = train(config, output, resume=args.resume, progress=not args.quiet)
    print(json.dumps({k: v for k, v in summary.items() if k != "machine"}))
