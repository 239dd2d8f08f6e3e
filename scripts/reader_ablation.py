#!/usr/bin/env python
"""Where a side-input head loses to its base: the head with its gates fixed at their start (a name
counts as one example, an unlabelled point half) and the head without the Transformer's own logits
(its base with the learned gates), on the dev suite's text tasks, names and pool read.

    python scripts/reader_ablation.py [--head tart-reader] --json results/dev-suite/reader-ablation-minilm-l6.json
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import torch

from tart.head.load import load_head
from tart.training import dev_suite


def ablated(head_name: str, part: str, folder: str) -> str:
    """Save the head with read-out rows zeroed: "gates" (fixed weights) or "logits" (no Transformer logits)."""
    head = copy.deepcopy(load_head(head_name))  # load_head's instance is shared: never change it
    rows = slice(head.config.label_width, None) if part == "gates" else slice(0, head.config.label_width)
    with torch.no_grad():
        head.read_out.weight[rows] = 0
        if head.read_out.bias is not None:
            head.read_out.bias[rows] = 0
    head.save_pretrained(folder)
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--head", default="tart-reader")
    p.add_argument("--embedder", default="minilm-l6")
    p.add_argument("--json", required=True)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        heads = {part: ablated(args.head, part, f"{tmp}/{part}") for part in ("gates", "logits")}
        methods = [f"tart:{args.head},names=1,pool=1", "base:side,names=1,pool=1"] + \
                  [f"tart:{folder},names=1,pool=1" for folder in heads.values()]
        report = dev_suite.run(methods, embedders=(args.embedder,), tasks=dev_suite.TEXT_TASKS)
    # the temporary folders' names mean nothing once gone: name the rows by what was removed
    rename = {methods[2]: f"tart:{args.head},names=1,pool=1,gates=fixed",
              methods[3]: f"tart:{args.head},names=1,pool=1,transformer_logits=0"}
    for row in report["results"] + report["summary"]:
        row["method"] = rename.get(row["method"], row["method"])
    report["methods"] = [rename.get(m, m) for m in report["methods"]]
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(dev_suite.format_table(report))


if __name__ == "__main__":
    main()
