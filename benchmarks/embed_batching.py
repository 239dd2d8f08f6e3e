"""Which texts share a forward pass: the length-planned batches (tart.lm.token_batches.plan_batches) vs
the greedy rule they replace (sorted by length, a new pass only when the token budget is full).

For each backend and text set (short texts, paragraphs, and both mixed), at --batches texts per call, in
one run with the planners alternating --repeats times (the best run of each kept): texts/s, and padded
tokens per real token. `forward_tokens` (a pass's own cost in padded tokens) is swept, to choose the
default; the vectors are compared with the greedy plan's (cosine, min over texts).

    python -m benchmarks.embed_batching --json results/benchmarks/embed_batching.json
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import time

import numpy as np
import torch

import tart.lm.embedder as embedder_module
from benchmarks import write_json
from benchmarks.embed_dtype import text_sets
from tart.lm.embedder import Embedder
from tart.lm.token_batches import plan_batches

BACKENDS = {"torch-bfloat16": {"backend": "torch", "dtype": "bfloat16"},
            "torch-float32": {"backend": "torch", "dtype": "float32"},
            "onnx-int8": {"backend": "onnx-int8"}}


def greedy(lengths, batch_tokens, prefix=0):
    """The rule before plan_batches: sorted by length, a new pass when the next text would overflow the budget."""
    batches, cur = [], []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if cur and (len(cur) + 1) * (prefix + lengths[i]) > batch_tokens:
            batches.append(cur)
            cur = []
        cur.append(i)
    return batches + [cur] if cur else batches


def run(embedder: Embedder, texts: list[str], batch: int, planner) -> tuple[float, np.ndarray, float]:
    """texts/s of embedding `texts` in calls of `batch`, the vectors, and padded / real tokens."""
    embedder_module.plan_batches = planner
    padded = real = 0
    ids = embedder.tokenize(texts)
    pre, suf = embedder._specials()
    for start in range(0, len(ids), batch):  # the plan's padding, counted as the embedder will pad
        lengths = [len(pre) + min(len(x), embedder.max_length) + len(suf) for x in ids[start:start + batch]]
        for b in planner(lengths, embedder.batch_tokens):
            padded += len(b) * max(lengths[i] for i in b)
            real += sum(lengths[i] for i in b)
    embedder._cache.clear()
    t0 = time.perf_counter()
    vectors = np.concatenate([embedder.embed_ids(ids[i:i + batch]) for i in range(0, len(ids), batch)])
    seconds = time.perf_counter() - t0
    embedder._cache.clear()
    return len(texts) / seconds, vectors, padded / real


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedder", default="minilm-l6")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", default="32,256", help="texts per call")
    p.add_argument("--short", type=int, default=512)
    p.add_argument("--paragraphs", type=int, default=64)
    p.add_argument("--forward-tokens", default="0,32,64,128,256")
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    sets = text_sets(args.short, args.paragraphs)
    rng = np.random.default_rng(0)
    sets["mixed"] = [sets["short"][i] for i in rng.permutation(len(sets["short"]))[:args.short // 2]] + sets["paragraphs"]
    sets["mixed"] = [sets["mixed"][i] for i in rng.permutation(len(sets["mixed"]))]
    planners = {"greedy": greedy, **{f"planned-{f}": functools.partial(plan_batches, forward_tokens=int(f))
                                     for f in args.forward_tokens.split(",")}}
    results = {}
    try:
        for backend in args.backends.split(","):
            embedder = Embedder(args.embedder, progress=False, **BACKENDS[backend])
            embedder.embed(["warm-up"])
            for kind, texts in sets.items():
                for batch in map(int, args.batches.split(",")):
                    runs = {name: [] for name in planners}
                    vectors, waste = {}, {}
                    for _ in range(args.repeats):
                        for name, planner in planners.items():
                            speed, vectors[name], waste[name] = run(embedder, texts, batch, planner)
                            runs[name].append(speed)
                    key = f"{backend}/{kind}/batch{batch}"
                    ref = vectors["greedy"] / np.linalg.norm(vectors["greedy"], axis=1, keepdims=True)
                    results[key] = {name: {"texts_per_s": max(r), "all_runs_texts_per_s": r,
                                           "padded_per_real_token": waste[name],
                                           "speedup_over_greedy": max(r) / max(runs["greedy"]),
                                           "min_cosine_to_greedy": float(np.min(np.sum(
                                               ref * vectors[name] / np.linalg.norm(vectors[name], axis=1, keepdims=True), 1)))}
                                    for name, r in runs.items()}
                    print(key, " ".join(f"{n} {v['texts_per_s']:.0f}/s (x{v['speedup_over_greedy']:.2f}, pad "
                                        f"{v['padded_per_real_token']:.2f})" for n, v in results[key].items()), flush=True)
    finally:
        embedder_module.plan_batches = plan_batches
    report = {"embedder": args.embedder, "threads": args.threads, "repeats": args.repeats,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average_1_5_15_before": load_before, "load_average_1_5_15_after": os.getloadavg()},
              "results": results}
    write_json(args.json, report, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
