"""`tart analyze NAME ...`: each analysis module registers its own subcommand with `add_parser`."""
from __future__ import annotations

import importlib

# Modules under tart.analysis that define add_parser(subparsers); imports inside them stay lazy
# (no torch at import time) so `tart --help` stays fast.
ANALYSES: list[str] = ["invariance", "slices", "emergence", "components"]


def add_parser(subparsers):
    p = subparsers.add_parser("analyze", help="analyses that explain models: " + ", ".join(ANALYSES))
    sub = p.add_subparsers(dest="analysis", required=True)
    for name in ANALYSES:
        importlib.import_module(f"tart.analysis.{name}").add_parser(sub)
    return p
