"""Argument types shared by the commands (standard library only: `tart --help` stays fast)."""
from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    """`--k 16,32,64` -> [16, 32, 64]; positive integers only."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def name_list(text: str) -> list[str]:
    """`--methods tart,logreg` -> ["tart", "logreg"]."""
    return [v.strip() for v in text.split(",") if v.strip()]
