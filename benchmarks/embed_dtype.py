"""Embedder weights in float32 vs bfloat16: throughput per embedder, closeness of the vectors, and
TART's accuracy on the same seeds with either.

For each embedder (default: minilm-l6 and smollm2-135m):
1. Throughput: the same texts embedded with float32 and with bfloat16 weights (torch threads as
   given, batches of --batch texts, at most --max-seconds per run, after a warm-up batch), on short
   texts (WordNet glosses) and on paragraphs (fortunes joined to about 1000 characters, near the
   embedder's 256-token cut). Runs alternate f32 / bf16 --repeats times; the best of each is kept.
2. Closeness: cosine between each text's float32 and bfloat16 vector (mean, min).
3. Accuracy: on each --datasets entry, TART (the shipped head) and a logistic-regression probe on the
   embeddings of either dtype, with the same support sets and test sets (paired seeds).

    python -m benchmarks.embed_dtype --json results/benchmarks/embed_dtype.json
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from benchmarks import write_json
from tart.data.datasets import load_dataset
from tart.lm.dtype import bf16_supported
from tart.lm.embedder import Embedder


def text_sets(n_short: int, n_long: int) -> dict[str, list[str]]:
    short = load_dataset("wordnet-animal-food").texts[:n_short]
    fortunes = load_dataset("fortunes-computers-politics").texts
    paragraphs, cur = [], ""
    for t in fortunes:
        cur = f"{cur} {t}".strip()
        if len(cur) >= 1000:
            paragraphs.append(cur[:1200])
            cur = ""
        if len(paragraphs) == n_long:
            break
    return {"short": list(short), "paragraphs": paragraphs}


def throughput(embedder: Embedder, texts: list[str], batch: int, max_seconds: float) -> dict:
    embedder._cache.clear()
    embedder.embed(texts[:batch])  # warm-up (and the model load)
    embedder._cache.clear()
    done, start = 0, time.perf_counter()
    while done < len(texts) and (done == 0 or time.perf_counter() - start < max_seconds):
        embedder.embed(texts[done:done + batch])
        done += len(texts[done:done + batch])
    elapsed = time.perf_counter() - start
    embedder._cache.clear()
    return {"texts": done, "seconds": elapsed, "texts_per_s": done / elapsed}


def best_throughput(models: dict, texts: list[str], repeats: int, batch: int, max_seconds: float) -> dict:
    """Per model, its best of `repeats` timed runs (runs interleaved across models, so a busy spell hits
    all of them), with every run's texts/s kept."""
    runs = {name: [] for name in models}
    for _ in range(repeats):
        for name, embedder in models.items():
            runs[name].append(throughput(embedder, texts, batch, max_seconds))
    return {name: {**max(r, key=lambda x: x["texts_per_s"]), "all_runs_texts_per_s": [x["texts_per_s"] for x in r]}
            for name, r in runs.items()}


def accuracy(vectors: dict[str, np.ndarray], labels: np.ndarray, k: int, seeds: int, test_size: int) -> dict:
    from sklearn.linear_model import LogisticRegression

    from tart.classifier import TartClassifier

    out = {dtype: {"tart": [], "probe": []} for dtype in vectors}
    classes = sorted(set(labels.tolist()))
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        support = np.concatenate([rng.choice(np.flatnonzero(labels == c), k // len(classes), replace=False)
                                  for c in classes])
        rest = np.setdiff1d(np.arange(len(labels)), support)
        test = rng.choice(rest, min(test_size, len(rest)), replace=False)
        for dtype, X in vectors.items():
            clf = TartClassifier(embedder=None, random_state=seed).fit(X[support], labels[support])
            out[dtype]["tart"].append(float((clf.predict(X[test]) == labels[test]).mean()))
            probe = LogisticRegression(max_iter=2000).fit(X[support], labels[support])
            out[dtype]["probe"].append(float((probe.predict(X[test]) == labels[test]).mean()))
    summary = {}
    for dtype, methods in out.items():
        summary[dtype] = {m: {"mean": float(np.mean(a)), "accs": a} for m, a in methods.items()}
    summary["paired_difference_bf16_minus_f32"] = {
        m: {"mean": float(np.mean(np.subtract(out["bfloat16"][m], out["float32"][m]))),
            "per_seed": np.subtract(out["bfloat16"][m], out["float32"][m]).tolist()} for m in ("tart", "probe")}
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedders", default="minilm-l6,smollm2-135m")
    p.add_argument("--datasets", default="wordnet-animal-food,fortunes-computers-politics")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--short", type=int, default=256, help="short texts in the throughput run")
    p.add_argument("--paragraphs", type=int, default=64, help="paragraphs in the throughput run")
    p.add_argument("--max-seconds", type=float, default=20.0, help="time cap of each throughput run")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--test-size", type=int, default=200)
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)
    if not bf16_supported():
        print("this CPU has no native bfloat16: nothing to compare", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    sets = text_sets(args.short, args.paragraphs)
    result = {"config": {k: v for k, v in vars(args).items() if k != "json"},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                          "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "load_average_1_5_15": os.getloadavg()},
              "embedders": {}}
    for name in args.embedders.split(","):
        models = {d: Embedder(name, dtype=d, backend="torch", progress=False) for d in ("float32", "bfloat16")}
        entry = {"throughput": {}, "closeness": {}, "accuracy": {}}
        for set_name, texts in sets.items():
            best = best_throughput(models, texts, args.repeats, args.batch, args.max_seconds)
            entry["throughput"][set_name] = {
                **best, "speedup": best["bfloat16"]["texts_per_s"] / best["float32"]["texts_per_s"]}
            n = min(best["float32"]["texts"], best["bfloat16"]["texts"])
            a, b = models["float32"].embed(texts[:n]), models["bfloat16"].embed(texts[:n])
            cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            entry["closeness"][set_name] = {"texts": n, "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}
            t = entry["throughput"][set_name]
            print(f"{name} {set_name}: float32 {t['float32']['texts_per_s']:.1f} texts/s, bfloat16 "
                  f"{t['bfloat16']['texts_per_s']:.1f} texts/s ({t['speedup']:.2f}x); cosine mean "
                  f"{cos.mean():.5f} min {cos.min():.5f}", flush=True)
        for data_name in filter(None, args.datasets.split(",")):
            data = load_dataset(data_name)
            labels = np.array([str(y) for y in data.labels])
            vectors = {d: emb.embed(list(data.texts)) for d, emb in models.items()}
            acc = accuracy(vectors, labels, args.k, args.seeds, args.test_size)
            entry["accuracy"][data_name] = acc
            diff = acc["paired_difference_bf16_minus_f32"]
            print(f"{name} {data_name} k={args.k}: TART f32 {acc['float32']['tart']['mean']:.3f} bf16 "
                  f"{acc['bfloat16']['tart']['mean']:.3f} (paired diff {diff['tart']['mean']:+.4f}); probe f32 "
                  f"{acc['float32']['probe']['mean']:.3f} bf16 {acc['bfloat16']['probe']['mean']:.3f} "
                  f"(diff {diff['probe']['mean']:+.4f})", flush=True)
            for emb in models.values():
                emb._cache.clear()
        result["embedders"][name] = entry
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
