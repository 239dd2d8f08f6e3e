"""How much could a head gain by deciding, per task, how much to trust the names and the unlabelled texts?

The side base (`base:side`: class means with each name as `name_weight` examples, refined by soft k-means
over the unlabelled texts, each `unlabeled_weight` of an example) is run on the dev suite's text tasks
for a grid of both weights. Against one fixed pair it reports, per embedder and k:
- best single: the best pair for the whole suite (what tuning one rule gets);
- per-task oracle: each task's best pair, chosen on its test labels (what a head that knew each task's
  best weights would get);
- per-episode oracle: each (task, seed)'s best pair, chosen on its test labels (an upper bound on any
  rule that only reweights the two signals).

    python -m tart.evaluate.weight_oracle --embedders minilm-l6 --json results/dev-suite/weight-oracle-minilm-l6.json
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from tart.evaluate import dev_suite

NAME_WEIGHTS = (0.0, 1.0, 2.0, 4.0)
UNLABELED_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
PROJECTION = "shrunk_std=1,shrinkage=1"  # the tuned side base's projection
FIXED = (2.0, 1.0)


def spec(name_weight: float, unlabeled_weight: float) -> str:
    return f"base:side,names=1,pool=1,{PROJECTION},name_weight={name_weight:g},unlabeled_weight={unlabeled_weight:g}"


def oracle(report: dict, fixed: tuple[float, float] = FIXED) -> list[dict]:
    """Per embedder and k: the fixed pair's accuracy, the best single pair's, and both oracles (means over
    tasks, in [0, 1])."""
    grid = list(itertools.product(NAME_WEIGHTS, UNLABELED_WEIGHTS))
    out = []
    for embedder in report["embedders"]:
        for k in report["ks"]:
            rows = {w: dev_suite._rows(report["results"], spec(*w), k, embedder) for w in grid}
            tasks = sorted(rows[fixed])
            if not tasks:
                continue
            accs = np.array([[rows[w][t]["accs"] for w in grid] for t in tasks])  # (tasks, grid, seeds)
            means = accs.mean(2)  # (tasks, grid)
            best = int(means.mean(0).argmax())
            out.append({"embedder": embedder, "k": k, "tasks": len(tasks), "fixed": list(fixed),
                        "fixed_mean": float(means[:, grid.index(fixed)].mean()),
                        "best_single": list(grid[best]), "best_single_mean": float(means[:, best].mean()),
                        "per_task_oracle": float(means.max(1).mean()),
                        "per_episode_oracle": float(accs.max(1).mean())})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tart.evaluate.weight_oracle", description=__doc__.split("\n")[0])
    p.add_argument("--embedders", default=",".join(dev_suite.EMBEDDERS))
    p.add_argument("--ks", default="0,8,16,32,64")
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    methods = [spec(*w) for w in itertools.product(NAME_WEIGHTS, UNLABELED_WEIGHTS)]
    report = dev_suite.run(methods, [int(k) for k in args.ks.split(",")], embedders=args.embedders.split(","),
                           tasks=dev_suite.TEXT_TASKS)
    report["oracle"] = oracle(report)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"{'embedder':14s} {'k':>3s} {'fixed':>7s} {'best single':>18s} {'per task':>9s} {'per episode':>12s}")
    for r in report["oracle"]:
        print(f"{r['embedder']:14s} {r['k']:3d} {100 * r['fixed_mean']:7.1f} {100 * r['best_single_mean']:7.1f} "
              f"{str(tuple(r['best_single'])):>10s} {100 * r['per_task_oracle']:9.1f} {100 * r['per_episode_oracle']:12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
