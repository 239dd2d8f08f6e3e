#!/usr/bin/env python
"""The share a ridge-rule head (`TartConfig.ridge_rule`, e.g. tart-gate) gives least squares, per k: on TART's
synthetic tasks (as `tart eval-synthetic` draws them, d = 16, alpha = 10, no names, no pool) and on the dev
suite's text tasks read the library's way, with names and a pool and with names alone (same splits and seeds
as `tart.evaluate.dev_suite`). The share is read off the head's gate (a hook on its read-out): the mean over
queries of sigmoid(RIDGE_GATE_GAIN * gate + RIDGE_GATE_START), per task and seed, then over those.

    python scripts/gate_shares.py --head tart-gate --embedder minilm-l6 --json results/dev-suite/tart-gate-shares-minilm-l6.json
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from tart.data.splits import balanced_indices
from tart.evaluate.dev_suite import TEXT_TASKS, make_method, task_vectors
from tart.evaluate.synthetic import sample_eval_tasks
from tart.head.ensemble import positive_probability
from tart.head.load import load_head
from tart.head.model import RIDGE_GATE_GAIN, RIDGE_GATE_START


class ShareRecorder:
    """Collects the ridge rule's share of every query the head answers while it is attached."""

    def __init__(self, head):
        self.shares: list[torch.Tensor] = []
        head.read_out.register_forward_hook(self._record)

    def _record(self, module, inputs, output):
        self.shares.append(torch.sigmoid(RIDGE_GATE_GAIN * output[..., -1].float() + RIDGE_GATE_START).flatten())

    def take(self) -> float:
        """The mean share since the last take."""
        mean = float(torch.cat(self.shares).mean())
        self.shares.clear()
        return mean


@torch.inference_mode()
def synthetic_shares(head, recorder, ks, n_tasks: int, seed: int) -> dict[int, float]:
    tasks = sample_eval_tasks(n_tasks, max(ks), 100, 16, head.config.n_dims, 10.0, seed)
    out = {}
    for k in ks:
        positive_probability(head, tasks.x_context[:, :k], tasks.y_context[:, :k], tasks.x_query)
        out[k] = recorder.take()
    return out


def text_shares(spec: str, recorder, embedder: str, ks, seeds: int, test_size: int = 200) -> dict[int, float]:
    per_run = {k: [] for k in ks}
    for task in TEXT_TASKS:
        X, y = task_vectors(task, embedder)
        for k in (k for k in ks if k >= len(np.unique(y))):
            for seed in range(seeds):
                support, test = balanced_indices(y, k, seed, min(test_size, len(y) - k), sampler="numpy")
                make_method(spec, seed, embedder).fit(X[support], y[support]).predict(X[test])
                per_run[k].append(recorder.take())
    return {k: float(np.mean(runs)) for k, runs in per_run.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="tart-gate")
    parser.add_argument("--embedder", default="minilm-l6")
    parser.add_argument("--ks", default="8,16,32,64")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--synthetic-tasks", type=int, default=500)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    head = load_head(args.head)
    if not head.config.ridge_rule:
        raise SystemExit(f"{args.head!r} has no ridge rule (TartConfig.ridge_rule): it gives no share")
    ks = [int(k) for k in args.ks.split(",")]
    recorder = ShareRecorder(head)
    report = {"head": args.head, "embedder": args.embedder, "ks": ks, "seeds": args.seeds,
              "synthetic": synthetic_shares(head, recorder, ks, args.synthetic_tasks, 1234)}
    for mode, options in (("text_names_pool", "names=1,pool=1"), ("text_names", "names=1")):
        report[mode] = text_shares(f"tart:{args.head},{options}", recorder, args.embedder, ks, args.seeds)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    for key in ("synthetic", "text_names_pool", "text_names"):
        print(f"{key:16s}" + " / ".join(f"{report[key][k]:.2f}" for k in ks) + f"  (k = {', '.join(map(str, ks))})")


if __name__ == "__main__":
    main()
