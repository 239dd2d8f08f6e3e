"""How much could a head gain by choosing, per task, which of the methods it already has to trust? (issue 25)

Reads the committed dev-suite reports (`bash scripts/evaluate_default_base.sh EMB`: 11 text tasks, 5 seeds,
k = 8 / 16 / 32 / 64) and compares the default, tart-base with names and pool, with two oracles that pick
among the methods of `CHOICES` (the default among them) knowing the test labels:
- per task: each task's best method by its mean over the seeds (what a head that knew each task's best
  method would get);
- per split: each (task, seed)'s best method (an upper bound on any head that only chooses, per task, whom to
  trust among them).
Both are bounds, measured on the reported seeds; nothing is chosen from them. The gain over the default is
averaged over the seeds per task, then over tasks, ± its SE across tasks.

    python scripts/choice_oracle.py --json results/dev-suite/choice-oracle.json
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from tart.evaluate.dev_suite import standard_error

DEFAULT = "tart:tart-base,names=1,pool=1"
CHOICES = (DEFAULT, "tart:tart-base,names=1", "base:side,names=1,pool=1", "probe,names=1", "centroid,names=1",
           "centroid-raw", "probe", "tart:tart-residual,names=1", "tart:tart-reader,names=1,pool=1")
KS = (8, 16, 32, 64)
REPORT = "results/dev-suite/default-base-text-{}.json"


def oracle_gains(report: dict, k: int) -> dict:
    """Per-task gains (points) over the default of the per-task and per-split oracles at k."""
    accs = {(r["task"], r["method"]): np.array(r["accs"]) for r in report["results"] if r["k"] == k}
    per_task, per_split = [], []
    for task in report["tasks"]:
        table = np.stack([accs[(task, m)] for m in CHOICES])  # (methods, seeds)
        default = table[0].mean()
        per_task.append(100 * (table.mean(1).max() - default))
        per_split.append(100 * (table.max(0).mean() - default))
    return {"per_task": per_task, "per_split": per_split}


def summary(gains: list[float]) -> dict:
    g = np.asarray(gains)
    return {"mean": round(float(g.mean()), 2), "se_tasks": round(standard_error(g), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--embedders", default="minilm-l6,smollm2-135m")
    p.add_argument("--json")
    args = p.parse_args()
    rows = []
    for embedder in args.embedders.split(","):
        with open(REPORT.format(embedder)) as f:
            report = json.load(f)
        for k in KS:
            gains = oracle_gains(report, k)
            row = {"embedder": embedder, "k": k, **{name: summary(g) for name, g in gains.items()}}
            rows.append(row)
            print(f"{embedder:>13} k={k:>2}  oracle - default, points: per task {row['per_task']['mean']:+.2f} "
                  f"± {row['per_task']['se_tasks']:.2f}, per split {row['per_split']['mean']:+.2f} "
                  f"± {row['per_split']['se_tasks']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"default": DEFAULT, "choices": list(CHOICES), "rows": rows}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
