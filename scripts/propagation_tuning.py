"""How tart-base's label spreading was set (`TartConfig.propagation`, issue 25): tart-base with names and the
test texts as pool, as `tart:tart-base,names=1,pool=1` reads them, on the dev suite's tasks with seeds 5-9,
not the reported 0-4 (the splits are drawn as the suite draws them, from the seed alone). A grid over the
share, alpha and neighbours (pool of 64, the library's default), then larger pools at the chosen setting; share
0 is the head without spreading. Zero-shot (k = 0), where the library does not spread, the spreading is fitted
here as it would be. Mean accuracy per embedder, task kind (text / vector) and k; prints the gain
over share 0 and writes every mean.

    python scripts/propagation_tuning.py --json results/dev-suite/propagation-tuning.json     (~6 min, 1 core)
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from itertools import product

import numpy as np
from tqdm.auto import tqdm

from tart.classifier import TartClassifier, head_alone
from tart.data.labels import sorted_labels
from tart.evaluate.dev_suite import EMBEDDERS, TEXT_TASKS, VECTOR_TASKS, _embed_names, suite_split, task_vectors
from tart.head import propagation

SEEDS = (5, 6, 7, 8, 9)
KS = (0, 8, 16, 32, 64)
SHARES = (0.0, 0.2, 0.3, 0.4)
GRAPHS = tuple(product((0.5, 0.8), (10, 20)))  # (alpha, neighbours)
CHOSEN = (0.4, 0.5, 10)
POOLS = (64, 128, 200)


def accuracies(task: str, embedder: str | None, k: int, seed: int, head) -> dict:
    """{(share, alpha, neighbours, pool): accuracy} on one split."""
    X, y = task_vectors(task, embedder)
    support, test = suite_split(y, k, seed)
    labels = sorted_labels(list(y[support]) if k else list(y))
    names = _embed_names(labels, embedder) if embedder else None
    label_names = ({c: str(c) for c in labels} if k == 0 else "auto") if names is not None else None
    settings = [(a, n, 64) for a, n in GRAPHS] + [(CHOSEN[1], CHOSEN[2], u) for u in POOLS[1:]]
    out = {}
    for alpha, neighbours, pool in settings:
        clf = TartClassifier(head=head, embedder=None, random_state=seed, label_names=label_names, max_unlabeled=pool)
        proba = clf.fit(X[support], y[support], unlabeled=X[test], name_vectors=names).predict_proba(X[test])
        # zero-shot too, where the library does not spread: measured here as it would
        spreading = propagation.fit_spreading(X[support], clf.y_index_, len(clf.classes_), clf.name_vectors_,
                                              head.config.max_name_weight / 2, clf.unlabeled_vectors_, alpha, neighbours)
        spread = spreading.log_proba(X[test])
        for share in SHARES if pool == 64 else (0.0, CHOSEN[0]):
            blended = propagation.blend(proba, spread, share)
            out[(share, alpha, neighbours, pool)] = float((clf.classes_[blended.argmax(1)] == y[test]).mean())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json")
    args = p.parse_args()
    head = head_alone("tart-base")  # the head's own answer; the spreading is fitted below, as the library fits it
    jobs = [(t, e) for e in EMBEDDERS for t in TEXT_TASKS] + [(t, None) for t in VECTOR_TASKS]
    rows = []
    for task, embedder in tqdm(jobs, desc="tasks"):
        n_classes = len(np.unique(task_vectors(task, embedder)[1]))
        for k in KS:
            if (k == 0 and embedder is None) or (k and k < n_classes):
                continue
            per_seed = [accuracies(task, embedder, k, seed, head) for seed in SEEDS]
            for key in per_seed[0]:
                share, alpha, neighbours, pool = key
                rows.append({"task": task, "embedder": embedder or "none", "k": k, "share": share, "alpha": alpha,
                             "neighbours": neighbours, "pool": pool, "mean": float(np.mean([a[key] for a in per_seed]))})
    groups = defaultdict(list)  # (embedder, k, share, alpha, neighbours, pool): the tasks' means
    for r in rows:
        groups[(r["embedder"], r["k"], r["share"], r["alpha"], r["neighbours"], r["pool"])].append(r["mean"])
    order = {e: i for i, e in enumerate(EMBEDDERS + ("none",))}
    summary = [{"embedder": key[0], "kind": "vector" if key[0] == "none" else "text",
                **dict(zip(("k", "share", "alpha", "neighbours", "pool"), key[1:])),
                "mean": float(np.mean(means)), "tasks": len(means)}
               for key, means in sorted(groups.items(), key=lambda g: (order[g[0][0]], *g[0][1:]))]
    base = {(s["embedder"], s["k"], s["pool"]): s["mean"] for s in summary if s["share"] == 0.0}
    for s in summary:
        s["gain"] = s["mean"] - base[(s["embedder"], s["k"], s["pool"])]
        if s["share"]:
            print(f"{s['embedder']:>13} k={s['k']:>2} share={s['share']} alpha={s['alpha']} neighbours={s['neighbours']}"
                  f" pool={s['pool']}: {100 * s['mean']:.2f} ({100 * s['gain']:+.2f})")
    report = {"seeds": list(SEEDS), "ks": list(KS), "chosen": dict(zip(("share", "alpha", "neighbours"), CHOSEN)),
              "summary": summary, "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
