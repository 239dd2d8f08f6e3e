"""How well a head's probabilities match its accuracy on the dev suite's text tasks (issue 25): per
embedder and k, the test log-loss (NLL) and mean confidence (the top probability) minus accuracy, with
names and the test texts as unlabelled pool, as `tart:HEAD,names=1,pool=1` reads them; same splits and
seeds as the dev suite. Written to choose tart-base's logit scale (TartConfig.base_scale_per_example);
`--unscaled` adds each head with that scale off, as "HEAD (unscaled)"; `--vary KEY=V1,V2,...` adds a copy of
each head per value of one config key, as "HEAD (KEY=V)"; `--no-pool` reads no unlabelled texts (names only,
as `tart:HEAD,names=1`). `--seeds`: the dev suite's reported seeds 0-4 by default; choose settings on its
tuning seeds, 5-9. Embedder `none`: the suite's vector tasks (tables, no names). `--baselines probe,centroid`:
also these fixed rules of the suite on the same splits, each with the labels' names as one more example per
class on text (the suite's spec `probe,names=1`; the vector tasks have no names). `--plot F.png`: a reliability
diagram per embedder (accuracy against confidence over all tasks, k and seeds, in BINS bins; one line per head
or baseline).

    python scripts/base_calibration.py --heads tart-base --unscaled --json F
    python scripts/base_calibration.py --heads tart-base --seeds 5,6,7,8,9 \
        --vary base_scale_per_example=100,150,200,300,400 --json results/dev-suite/calibration-scale-tuning.json
"""
from __future__ import annotations

import argparse
import copy
import json

import numpy as np

from tart.classifier import TartClassifier
from tart.evaluate.dev_suite import (EMBEDDERS, TEXT_TASKS, VECTOR_TASKS, _embed_names, make_method, suite_split,
                                    task_vectors)
from tart.head.load import load_head

SEEDS = (0, 1, 2, 3, 4)  # the dev suite's reported seeds
BINS = np.linspace(0, 1, 11)  # of the top probability, for the reliability diagram


def with_setting(name: str, key: str, value: float):
    head = copy.deepcopy(load_head(name))  # load_head's heads are shared: change a copy
    if not hasattr(head.config, key):
        raise SystemExit(f"{name}'s config has no {key!r}")
    setattr(head.config, key, value)
    return head


def calibration(label: str, head, embedder: str, ks, seeds=SEEDS, test_size: int = 200,
                pool: bool = True, baseline: str | None = None) -> tuple[list[dict], dict]:
    """Per (task, k): log-loss, confidence - accuracy and accuracy, averaged over seeds; and over every test
    text, per bin of confidence (BINS): how many, their mean confidence, the share answered right. `head`
    answers, read as TartClassifier reads it; or, with `baseline` (a suite method's spec), that method."""
    rows, confidence, correct = [], [], []
    vectors = embedder == "none"
    for task in VECTOR_TASKS if vectors else TEXT_TASKS:
        X, y = task_vectors(task, None if vectors else embedder)
        names = None if vectors else _embed_names(list(y), embedder)  # every class is in each balanced support
        for k in ks:
            if k < len(np.unique(y)):
                continue
            nll, gap, acc = [], [], []
            for seed in seeds:
                support, test = suite_split(y, k, seed, test_size)
                if baseline:
                    clf = make_method(baseline, seed, None if vectors else embedder)
                    clf.fit(X[support], y[support])
                else:
                    clf = TartClassifier(head=head, embedder=None, random_state=seed,
                                         label_names=None if vectors else "auto")
                    clf.fit(X[support], y[support], unlabeled=X[test] if pool else None, name_vectors=names)
                proba = clf.predict_proba(X[test])
                truth = np.searchsorted(clf.classes_, y[test])
                right = proba.argmax(1) == truth
                nll.append(float(-np.log(np.clip(proba[np.arange(len(test)), truth], 1e-12, None)).mean()))
                gap.append(float(proba.max(1).mean() - right.mean()))
                acc.append(float(right.mean()))
                confidence.append(proba.max(1))
                correct.append(right)
            rows.append({"head": label, "embedder": embedder, "task": task, "k": k, "nll": float(np.mean(nll)),
                         "confidence_minus_accuracy": float(np.mean(gap)), "accuracy": float(np.mean(acc))})
    confidence, correct = np.concatenate(confidence), np.concatenate(correct)
    bin_of = np.clip(np.digitize(confidence, BINS) - 1, 0, len(BINS) - 2)
    reliability = {"head": label, "embedder": embedder, "bins": [
        {"low": float(BINS[b]), "high": float(BINS[b + 1]), "count": int((bin_of == b).sum()),
         "confidence": float(confidence[bin_of == b].mean()), "accuracy": float(correct[bin_of == b].mean())}
        for b in range(len(BINS) - 1) if (bin_of == b).any()]}
    return rows, reliability


def plot_reliability(reliability: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    embedders = list(dict.fromkeys(r["embedder"] for r in reliability))
    fig, axes = plt.subplots(1, len(embedders), figsize=(4.2 * len(embedders), 4), squeeze=False)
    for ax, e in zip(axes[0], embedders):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        for r in (r for r in reliability if r["embedder"] == e):
            bins = [b for b in r["bins"] if b["count"] >= 20]  # a handful of texts is no rate
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", ms=3, label=r["head"])
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(e if e != "none" else "vector tasks")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--heads", required=True, help="comma-separated heads (names or folders)")
    p.add_argument("--embedders", default=",".join(EMBEDDERS), help="comma-separated; none: the vector tasks")
    p.add_argument("--ks", default="8,16,32,64")
    p.add_argument("--unscaled", action="store_true", help="also each head with its logit scale off")
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                   help="also each head with this config key at each value")
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    p.add_argument("--no-pool", action="store_true", help="no unlabelled texts: names only")
    p.add_argument("--baselines", default="", help="comma-separated suite baselines (probe, centroid) beside the heads")
    p.add_argument("--json", required=True)
    p.add_argument("--plot", help="also a reliability diagram, to this .png")
    args = p.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    heads = {h: h for h in args.heads.split(",")}
    if args.unscaled:
        heads.update({f"{h} (unscaled)": with_setting(h, "base_scale_per_example", 0.0) for h in args.heads.split(",")})
    for setting in args.vary:
        key, values = setting.split("=", 1)
        heads.update({f"{h} ({key}={v})": with_setting(h, key, float(v))
                      for h in args.heads.split(",") for v in values.split(",")})
    baselines = [f"{b},names=1" for b in args.baselines.split(",") if b]  # each labelled by its spec
    rows, reliability = [], []
    for label in [*heads, *baselines]:
        for e in args.embedders.split(","):
            these, bins = calibration(label, heads.get(label), e, ks, seeds, pool=not args.no_pool,
                                      baseline=None if label in heads else label)
            rows += these
            reliability.append(bins)
    summary = []
    for h in [*heads, *baselines]:
        for e in args.embedders.split(","):
            for k in ks:
                mine = [r for r in rows if (r["head"], r["embedder"], r["k"]) == (h, e, k)]
                summary.append({"head": h, "embedder": e, "k": k, "tasks": len(mine),
                                **{m: float(np.mean([r[m] for r in mine]))
                                   for m in ("nll", "confidence_minus_accuracy", "accuracy")}})
                s = summary[-1]
                print(f"{h:28s} {e:13s} k={k:3d}  NLL {s['nll']:.3f}  confidence - accuracy "
                      f"{100 * s['confidence_minus_accuracy']:+5.1f}  accuracy {100 * s['accuracy']:.1f}")
    tasks = list(TEXT_TASKS) + (list(VECTOR_TASKS) if "none" in args.embedders.split(",") else [])
    with open(args.json, "w") as f:
        json.dump({"tasks": tasks, "ks": ks, "seeds": seeds, "pool": not args.no_pool, "summary": summary,
                   "reliability": reliability, "rows": rows}, f, indent=1)
    if args.plot:
        plot_reliability(reliability, args.plot)


if __name__ == "__main__":
    main()
