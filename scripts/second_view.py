"""Is there information in the embedder that no method reads? A second view of each text (issue 25).

Every method of the dev suite reads one vector per text: the embedder's last layer, mean-pooled. Here each
text (and each label's name) is also embedded from an earlier layer of the same model, and both views, each
scaled to unit norm, are concatenated. The default head (tart-base, names and the test texts as pool) and the
fixed rules (the side base with names and pool; the probe and class means, with and without names as examples,
as the suite runs them) read the one view and then the two, on the same splits: the dev suite's text tasks,
seeds 5-9 (the tuning seeds, not the reported 0-4). Mean accuracy per method and k, and the default − the best
fixed rule, ± SE across tasks.

    python scripts/second_view.py --embedder minilm-l6 --layer 3 --json results/dev-suite/second-view-minilm-l6.json   (~3 min)
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np
from tqdm.auto import tqdm

from tart import methods
from tart.classifier import TartClassifier
from tart.data.label_names import name_texts
from tart.data.labels import sorted_labels
from tart.evaluate import dev_suite as suite
from tart.lm.embedder import load_embedder

SEEDS = (5, 6, 7, 8, 9)
KS = (8, 16, 32, 64)
DEFAULT = "tart-base,names=1,pool=1"
VIEWS = ("last layer", "two layers")


def both(last: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    unit = lambda A: A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    return np.concatenate([unit(np.asarray(last)), unit(np.asarray(earlier))], 1).astype(np.float32)


def split_accuracies(X, y, support, test, names, bare_names, seed) -> dict:
    """{method: accuracy} of one view on one split; names: the library's name vectors, bare_names: each label
    embedded as it is (as the suite's `names=1` gives the probe and class means their names)."""
    S, Q, ys, yt = X[support], X[test], y[support], y[test]
    labels = sorted_labels(list(ys))
    clf = TartClassifier(head="tart-base", embedder=None, random_state=seed, label_names="auto")
    out = {DEFAULT: clf.fit(S, ys, unlabeled=Q, name_vectors=names).predict(Q)}
    out["base:side,names=1,pool=1"] = suite.SideBase().fit(S, ys, unlabeled=Q, name_vectors=names).predict(Q)
    named_S, named_y = np.concatenate([S, bare_names]), np.concatenate([ys, np.asarray(labels)])
    for name, registered in (("probe", "logreg"), ("centroid", "centroid"), ("centroid-raw", "centroid-raw")):
        out[name] = methods.make(registered, seed=seed).fit(S, ys).predict(Q)
        if name != "centroid-raw":
            out[name + ",names=1"] = methods.make(registered, seed=seed).fit(named_S, named_y).predict(Q)
    return {m: float((p == yt).mean()) for m, p in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--embedder", default="minilm-l6")
    p.add_argument("--layer", type=int, default=3, help="the earlier layer (hidden_states index)")
    p.add_argument("--json")
    args = p.parse_args()
    last = suite._embedder(args.embedder)
    earlier = load_embedder(args.embedder, layer=args.layer, backend=suite._backend(), progress=False)
    per_task = defaultdict(list)  # (view, method, k) -> per-task mean over seeds
    for task in tqdm(suite.TEXT_TASKS, desc="tasks"):
        X, y = suite.task_vectors(task, args.embedder)
        views = {VIEWS[0]: X, VIEWS[1]: both(X, earlier.embed(suite.task_texts(task).texts))}
        for k in KS:
            accs = defaultdict(list)
            for seed in SEEDS:
                support, test = suite.suite_split(y, k, seed)
                labels = sorted_labels(list(y[support]))
                texts, bare = name_texts(labels, "auto", args.embedder), [str(c) for c in labels]
                names = {VIEWS[0]: suite._embed_names(labels, args.embedder)}
                names[VIEWS[1]] = both(names[VIEWS[0]], earlier.embed(texts))
                bare_names = {VIEWS[0]: np.asarray(last.embed(bare))}
                bare_names[VIEWS[1]] = both(bare_names[VIEWS[0]], earlier.embed(bare))
                for view, Xv in views.items():
                    for method, acc in split_accuracies(Xv, y, support, test, names[view], bare_names[view],
                                                        seed).items():
                        accs[(view, method)].append(acc)
            for key, a in accs.items():
                per_task[key + (k,)].append(float(np.mean(a)))
    rows = []
    for view in VIEWS:
        for k in KS:
            means = {m: 100 * np.asarray(per_task[(v, m, kk)]) for (v, m, kk) in per_task if (v, kk) == (view, k)}
            best = max((m for m in means if m != DEFAULT), key=lambda m: means[m].mean())
            gap = means[DEFAULT] - means[best]
            rows.append({"view": view, "k": k, "means": {m: round(float(a.mean()), 2) for m, a in sorted(means.items())},
                         "best_fixed": best, "default_minus_best_fixed": round(float(gap.mean()), 2),
                         "se_tasks": round(suite.standard_error(gap), 2)})
            print(f"{view:>10} k={k:>2}: default {means[DEFAULT].mean():.2f}, best fixed rule {best} "
                  f"{means[best].mean():.2f}, gap {gap.mean():+.2f} ± {rows[-1]['se_tasks']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"embedder": args.embedder, "layer": args.layer, "seeds": list(SEEDS), "rows": rows}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
