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


def add_labelled_data_args(p: argparse.ArgumentParser, n: int) -> None:
    """--data, its columns, a class-balanced support set of --k, --n evaluated texts, --seed."""
    p.add_argument("--data", required=True, help="bundled dataset name or .csv/.jsonl/.json file")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--k", type=int, default=16, help="class-balanced support-set size (default 16)")
    p.add_argument("--n", type=int, default=n, help=f"texts evaluated, drawn from the rest (default {n})")
    p.add_argument("--seed", type=int, default=0)


def name_list(text: str) -> list[str]:
    """`--methods tart,logreg` -> ["tart", "logreg"]."""
    return [v.strip() for v in text.split(",") if v.strip()]
