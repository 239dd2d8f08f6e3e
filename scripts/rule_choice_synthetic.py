#!/usr/bin/env python
"""tart-base's leave-one-out choice of rule (`TartConfig.ridge_gate = "loo"`, `tart.head.rule_choice`) on TART's
synthetic tasks (as `tart eval-synthetic` draws them: d = 16, alpha = 10, no names, no pool): accuracy of the
class means alone, least squares alone, and the chosen rule, with the share of tasks given to least squares,
per k; `tart-residual` on the same tasks for reference. Seed 99 is the set the choice was tuned on; 1234 is the
reported one (checkpoints/*/eval.json).

    python scripts/rule_choice_synthetic.py --seeds 99,1234 --json results/dev-suite/rule-choice-synthetic.json
"""
from __future__ import annotations

import argparse
import copy
import json

import torch

from tart.evaluate.synthetic import head_accuracy, sample_eval_tasks
from tart.head.load import load_head
from tart.head.model import RIDGE_PENALTY, ridge_scores, side_class_moments
from tart.head.rule_choice import choose_least_squares


def least_squares_accuracy(tasks, k: int) -> float:
    x, y = tasks.x_context[:, :k], tasks.y_context[:, :k]
    scores = ridge_scores(x, y, tasks.x_query, torch.tensor([k]), 2)
    return (scores.argmax(-1) == tasks.y_query).float().mean().item()


def least_squares_share(head, tasks, k: int) -> float:
    """The share of tasks whose leave-one-out choice is least squares (the base's moments: no names, no pool)."""
    x, y = tasks.x_context[:, :k], tasks.y_context[:, :k].long()
    B, C = x.shape[0], head.config.n_classes
    sums, counts, present = side_class_moments(x, y, torch.tensor([k]), C, None, None, None, None,
                                               torch.zeros(B, 1), torch.zeros(B, 1), steps=0)
    use, _ = choose_least_squares(x, y, sums[:, 0], counts[:, 0], present[:, 0], C, RIDGE_PENALTY)
    return use.float().mean().item()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="99,1234")
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--ks", default="8,16,32,64")
    p.add_argument("--json")
    args = p.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    base = load_head("tart-base")
    means_only = copy.deepcopy(base)
    means_only.config.ridge_gate = "none"
    residual = load_head("tart-residual")
    report = {"tasks": args.tasks, "d": 16, "alpha": 10.0, "queries_per_task": 100, "seeds": {}}
    for seed in [int(s) for s in args.seeds.split(",")]:
        tasks = sample_eval_tasks(args.tasks, max(ks), 100, 16, base.config.n_dims, 10.0, seed)
        chosen, means = head_accuracy(base, tasks, ks)[1], head_accuracy(means_only, tasks, ks)[1]
        res_tasks = sample_eval_tasks(args.tasks, max(ks), 100, 16, residual.config.n_dims, 10.0, seed)
        ref = head_accuracy(residual, res_tasks, ks)[1]
        rows = [{"k": k, "class_means": means[k], "least_squares": least_squares_accuracy(tasks, k),
                 "tart_base": chosen[k], "least_squares_share": least_squares_share(base, tasks, k),
                 "tart_residual": ref[k]} for k in ks]
        report["seeds"][str(seed)] = rows
        for r in rows:
            print(f"seed {seed} k={r['k']}: class means {r['class_means']:.4f}, least squares {r['least_squares']:.4f}, "
                  f"tart-base {r['tart_base']:.4f} (least squares on {r['least_squares_share']:.2f} of tasks), "
                  f"tart-residual {r['tart_residual']:.4f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
