"""`tart analyze NAME ...`: one module per analysis, tart/cli/analyze_<NAME>.py, each with `add_parser`."""
from __future__ import annotations

import importlib

# tart.cli.analyze_<name> modules; they import their analysis (tart/analysis/<name>.py), which loads
# no torch at import time, so `tart --help` stays fast.
ANALYSES: list[str] = ["invariance", "slices", "emergence", "components"]


def add_parser(subparsers):
    p = subparsers.add_parser("analyze", help="analyses that explain models: " + ", ".join(ANALYSES))
    sub = p.add_subparsers(dest="analysis", required=True)
    for name in ANALYSES:
        importlib.import_module(f"tart.cli.analyze_{name}").add_parser(sub)
    return p
