"""Embedder backends side by side: torch (float32 and bfloat16 weights), onnx and onnx-int8 (ONNX Runtime).

For each embedder (default: minilm-l6 and smollm2-135m), in one run, on the same texts and threads:
1. Load: seconds to a first vector (the ONNX export is made beforehand, once; its time is recorded
   when this run makes it).
2. Throughput: texts/s on short texts (WordNet glosses) and on paragraphs (fortunes joined to about
   1000 characters, near the 256-token cut), --batch texts per call; runs alternate between the
   backends --repeats times and the best of each is kept. Each backend batches with its default token
   budget (tart.lm.backends.BATCH_TOKENS: torch 8192 tokens per forward, ONNX Runtime 1024).
3. Closeness: cosine of each text's vector to torch float32's (min, mean) on the mixed-length set
   (short texts and paragraphs together, embedded in padded batches).
4. Batch size: texts/s against texts per forward pass (short texts, one forward per call), per backend:
   where the token budget per forward comes from.
5. The dev suite (optional, --dev-suite TORCH.json INT8.json): per embedder, method and k, the change
   in mean accuracy from torch float32 to onnx-int8 vectors, from two `python -m tart.evaluate.dev_suite`
   reports run with TART_EMBED_DTYPE=float32 and with TART_EMBED_BACKEND=onnx-int8.
The 1-, 5- and 15-minute load averages are recorded before and after: the machine is shared.

    python -m benchmarks.embed_backend --json results/benchmarks/embed_backend.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import write_json
from benchmarks.embed_dtype import best_throughput, text_sets, throughput  # the same texts and timing
from tart import memo
from tart.lm.embedder import Embedder

# name -> Embedder arguments
SETUPS = {"torch-float32": {"backend": "torch", "dtype": "float32"},
          "torch-bfloat16": {"backend": "torch", "dtype": "bfloat16"},
          "onnx": {"backend": "onnx"},
          "onnx-int8": {"backend": "onnx-int8"}}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def load(name: str, setup: dict) -> tuple[Embedder, dict]:
    from tart.lm.onnx import exported_model
    from tart.lm.registry import default_cache_dir, resolve_model_dir

    info = {}
    if setup["backend"] != "torch":  # the one-time export, timed apart from the load
        start = time.perf_counter()
        path = exported_model(resolve_model_dir(name), setup["backend"], -1, default_cache_dir())
        info["export_or_cache_hit_s"] = round(time.perf_counter() - start, 2)
        info["file_mb"] = round(path.stat().st_size / 2**20, 1)
    start = time.perf_counter()
    emb = Embedder(name, progress=False, **setup)
    emb.embed(["warm-up"])
    info["load_s"] = round(time.perf_counter() - start, 2)
    return emb, info


def dev_suite_deltas(torch_json: str, int8_json: str) -> dict:
    """Per embedder, method and k: mean accuracy with onnx-int8 vectors minus with torch float32 ones."""
    def means(path):
        return {(r["embedder"], r["method"], r["k"]): r["mean"] for r in json.loads(Path(path).read_text())["summary"]}

    a, b = means(torch_json), means(int8_json)
    rows = [{"embedder": e, "method": m, "k": k, "torch_float32": round(a[e, m, k], 4),
             "onnx_int8": round(b[e, m, k], 4), "delta_points": round(100 * (b[e, m, k] - a[e, m, k]), 2)}
            for (e, m, k) in sorted(set(a) & set(b))]
    worst = max((abs(r["delta_points"]) for r in rows), default=None)
    return {"reports": [torch_json, int8_json], "rows": rows, "max_abs_delta_points": worst}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedders", default="minilm-l6,smollm2-135m")
    p.add_argument("--setups", default=",".join(SETUPS), help=f"of {', '.join(SETUPS)}")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32, help="texts per call in the throughput runs")
    p.add_argument("--batch-sizes", default="1,8,32,64,128", help="texts per call in the batch-size sweep")
    p.add_argument("--short", type=int, default=256, help="short texts")
    p.add_argument("--paragraphs", type=int, default=64, help="paragraphs")
    p.add_argument("--max-seconds", type=float, default=15.0, help="time cap of each throughput run")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dev-suite", nargs=2, metavar=("TORCH_JSON", "INT8_JSON"),
                   help="dev-suite reports (torch float32, onnx-int8) to compare")
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)  # ONNX Runtime sessions take torch's thread count
    sets = text_sets(args.short, args.paragraphs)
    mixed = sets["short"] + sets["paragraphs"]
    import onnxruntime

    result = {"config": {k: v for k, v in vars(args).items() if k != "json"},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                          "onnxruntime": onnxruntime.__version__,
                          "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "load_average_1_5_15_start": os.getloadavg()},
              "embedders": {}}
    for name in args.embedders.split(","):
        setups = {s: SETUPS[s] for s in args.setups.split(",")}
        models, entry = {}, {"load": {}, "throughput": {}, "closeness": {}, "batch_sweep": {}}
        for s, setup in setups.items():
            models[s], entry["load"][s] = load(name, setup)
        for set_name, texts in sets.items():
            best = best_throughput(models, texts, args.repeats, args.batch, args.max_seconds)
            base = best["torch-float32"]["texts_per_s"] if "torch-float32" in best else None
            entry["throughput"][set_name] = {
                s: {**b, "speedup_vs_torch_float32": round(b["texts_per_s"] / base, 2) if base else None}
                for s, b in best.items()}
            print(f"{name} {set_name}: " + ", ".join(f"{s} {b['texts_per_s']:.1f}" for s, b in best.items())
                  + " texts/s", flush=True)
        if "torch-float32" in models:
            ref = models["torch-float32"].embed(mixed)
            for s, emb in models.items():
                if s != "torch-float32":
                    c = cosines(emb.embed(mixed), ref)
                    entry["closeness"][s] = {"texts": len(mixed), "cosine_min": float(c.min()),
                                             "cosine_mean": float(c.mean())}
                    print(f"{name} {s}: cosine to torch float32 min {c.min():.6f} mean {c.mean():.6f}", flush=True)
        for s, emb in models.items():
            # one forward per call here (no token budget), so the sweep shows what a forward's size does
            budget, emb.batch_tokens = emb.batch_tokens, 10**9
            sweep = {}
            for b in [int(b) for b in args.batch_sizes.split(",") if b]:
                n = min(len(sets["short"]), max(16, 4 * b))  # a few calls per point
                sweep[str(b)] = round(throughput(emb, sets["short"][:n], b, args.max_seconds)["texts_per_s"], 2)
            emb.batch_tokens = budget
            entry["batch_sweep"][s] = sweep
            print(f"{name} {s} texts/s by texts per forward: {sweep}", flush=True)
        result["embedders"][name] = entry
        models.clear()
        memo._LOADED.clear()  # the next embedder's models only: SmolLM2 in four forms is ~2 GB
        if args.json:  # after each embedder: a run cut short keeps what it measured
            result["machine"]["load_average_1_5_15_end"] = os.getloadavg()
            write_json(args.json, result)
    if args.dev_suite:
        result["dev_suite_int8_vs_torch_float32"] = dev_suite_deltas(*args.dev_suite)
    result["machine"]["load_average_1_5_15_end"] = os.getloadavg()
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
