"""Seconds to classify 200 queries at k = 64 (binary and 6-class): the head vs the probe, one run.

The head (`TartClassifier` on vectors, its default ensemble, plus the single-member head) against a
logistic-regression probe (C by CV on the support, as `tart evaluate` fits it), fit + predict each,
on the same random task; median of `--repeats` timings. Vectors are random (the cost does not depend
on them), 384-dimensional like MiniLM's embeddings.

With `--unlabeled U --names` the head also reads U unlabelled points and a name per class (a head with
side inputs, e.g. tart-reader, reads them in tokens of their own).

    python -m benchmarks.head_latency [--head tart-prior] [--multiclass ovr] [--unlabeled 64 --names] [--json F]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from tart.classifier import TartClassifier
from tart.methods.probes import LogRegProbe


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: the head's first forward allocates
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--head", default=None, help="checkpoint (default: the default head)")
    p.add_argument("--multiclass", default="auto", help="TartClassifier's multiclass for the 6-class task")
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--unlabeled", type=int, default=0, help="unlabelled points the head reads (fit's unlabeled)")
    p.add_argument("--names", action="store_true", help="a name vector per class (fit's name_vectors)")
    p.add_argument("--json")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    head_kw = {"multiclass": args.multiclass, **({} if args.head is None else {"head": args.head})}
    rows = []
    for n_classes in (2, 6):
        S = rng.normal(size=(args.k, args.dim)).astype(np.float32)
        y = np.arange(args.k) % n_classes
        Q = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
        side = {"unlabeled": rng.normal(size=(args.unlabeled, args.dim)).astype(np.float32) if args.unlabeled else None,
                "name_vectors": rng.normal(size=(n_classes, args.dim)).astype(np.float32) if args.names else None}
        methods = {
            "head (default ensemble)": lambda: TartClassifier(embedder=None, **head_kw).fit(S, y, **side).predict_proba(Q),
            "head (1 member)": lambda: TartClassifier(embedder=None, n_permutations=1, **head_kw).fit(S, y, **side).predict_proba(Q),
            "probe": lambda: LogRegProbe().fit(S, y).predict_proba(Q),
        }
        timings = {name: median_seconds(fn, args.repeats) for name, fn in methods.items()}
        for name, seconds in timings.items():
            rows.append({"classes": n_classes, "method": name, "seconds": seconds,
                         "vs_probe": seconds / timings["probe"]})
            print(f"{n_classes} classes  {name:26s} {seconds * 1000:8.1f} ms  ({seconds / timings['probe']:.2f}x the probe)")
    report = {"k": args.k, "queries": args.queries, "dim": args.dim, "repeats": args.repeats,
              "unlabeled": args.unlabeled, "names": args.names,
              "head": args.head or "default", "multiclass": args.multiclass, "torch_threads": torch.get_num_threads(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "load_average": os.getloadavg(),
              "machine": platform.processor() or platform.machine(), "results": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
