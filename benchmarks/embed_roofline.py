"""How far each embedder path is from what this CPU can do: a roofline for the embedder's own shapes.

1. Peak: matrix-multiply throughput (FLOP/s) of this machine for the embedder's own Linear shapes
   (every distinct in x out of its layers, with T rows = tokens per forward), per dtype and kernel:
   float32 (torch's oneDNN; ONNX Runtime's MatMul), bfloat16 (torch), int8 (torch._int_mm; ONNX Runtime's
   MatMulInteger, what onnx-int8 runs). A dtype's peak is its best kernel on its best shape.
2. Paths: torch float32, torch bfloat16, onnx (float32), onnx-int8, each on short texts and on
   paragraphs, at 1 and at --batch texts per call. For each: texts/s, and where the time goes:
   tokenisation, the model's forward passes, and the rest (pooling, batching, copies); padding waste
   (padded tokens / real tokens of the forward batches). Achieved FLOP/s = FLOPs of the real tokens /
   forward seconds (2 x Linear parameters per token, plus attention's 4 x length x hidden per token and
   layer), as a fraction of the peak of the path's dtype.
The 1-minute load average is recorded before and after: the machine is shared.

    python -m benchmarks.embed_roofline --json results/benchmarks/embed_roofline.json
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from benchmarks import write_json
from benchmarks.embed_dtype import text_sets
from tart.lm.embedder import Embedder

PATHS = {"torch-float32": {"backend": "torch", "dtype": "float32"},
         "torch-bfloat16": {"backend": "torch", "dtype": "bfloat16"},
         "onnx": {"backend": "onnx"}, "onnx-int8": {"backend": "onnx-int8"}}
PEAK_OF = {"torch-float32": "float32", "torch-bfloat16": "bfloat16", "onnx": "float32", "onnx-int8": "int8"}


def _best_seconds(run, repeats: int = 5, min_s: float = 0.05) -> float:
    """The fastest of `repeats` timings of run(), each repeated until it lasts min_s."""
    best = float("inf")
    run()  # warm-up
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            run()
            n += 1
            if time.perf_counter() - t0 >= min_s:
                break
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def linear_shapes(model) -> list[tuple[int, int, int]]:
    """(in, out, count) of the model's Linear layers (its matrix multiplies)."""
    shapes: dict = {}
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            shapes[(m.in_features, m.out_features)] = shapes.get((m.in_features, m.out_features), 0) + 1
    return [(i, o, n) for (i, o), n in sorted(shapes.items())]


def _onnx_matmul(rows: int, n_in: int, n_out: int, int8: bool):
    """An ONNX Runtime session of one matrix multiply, and its feed: MatMulInteger (uint8 activations x
    int8 weights, what onnx-int8 runs) or a float32 MatMul (what onnx runs)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        w = rng.integers(-128, 127, (n_in, n_out), dtype=np.int8)
        x = rng.integers(0, 255, (rows, n_in), dtype=np.uint8)
        op, x_type, y_type = "MatMulInteger", TensorProto.UINT8, TensorProto.INT32
    else:
        w = rng.standard_normal((n_in, n_out), dtype=np.float32)
        x = rng.standard_normal((rows, n_in), dtype=np.float32)
        op, x_type, y_type = "MatMul", TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph([helper.make_node(op, ["x", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", x_type, [rows, n_in])],
                              [helper.make_tensor_value_info("y", y_type, [rows, n_out])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return session, {"x": x}


def peaks(shapes, rows: int) -> dict:
    """FLOP/s of the fastest of the model's matmul shapes, per kernel (torch's oneDNN, ONNX Runtime's
    MLAS) and dtype, with every shape's figure; a dtype's peak is its faster kernel's."""
    kernels = {}
    for kernel in ("float32-torch", "float32-onnxruntime", "bfloat16-torch", "int8-torch", "int8-onnxruntime"):
        per_shape = {}
        for n_in, n_out, _ in shapes:
            if kernel == "int8-torch":
                a = torch.randint(-128, 127, (rows, n_in), dtype=torch.int8)
                b = torch.randint(-128, 127, (n_in, n_out), dtype=torch.int8)
                seconds = _best_seconds(lambda: torch._int_mm(a, b))
            elif kernel.endswith("onnxruntime"):
                session, feed = _onnx_matmul(rows, n_in, n_out, int8=kernel.startswith("int8"))
                seconds = _best_seconds(lambda: session.run(None, feed))
            else:
                dtype = getattr(torch, kernel.split("-")[0])
                a, w = torch.randn(rows, n_in, dtype=dtype), torch.randn(n_out, n_in, dtype=dtype)
                seconds = _best_seconds(lambda: torch.nn.functional.linear(a, w))
            per_shape[f"{rows}x{n_in}x{n_out}"] = 2 * rows * n_in * n_out / seconds
        kernels[kernel] = {"peak_flops": max(per_shape.values()), "per_shape_flops": per_shape}
    return {dtype: {"peak_flops": max(v["peak_flops"] for k, v in kernels.items() if k.startswith(dtype)),
                    "kernels": {k: v for k, v in kernels.items() if k.startswith(dtype)}}
            for dtype in ("float32", "bfloat16", "int8")}


class ForwardTimer:
    """Wraps an embedder's model so that each forward pass is timed, and counts real and padded tokens."""

    def __init__(self, model):
        self.model, self.seconds, self.real, self.padded, self.attention_flops = model, 0.0, 0, 0, 0.0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, input_ids, attention_mask, **kw):
        t0 = time.perf_counter()
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kw)
        self.seconds += time.perf_counter() - t0
        lengths = attention_mask.sum(1)
        self.real += int(lengths.sum())
        self.padded += int(attention_mask.numel())
        c = self.model.config
        # scores and weighted values: 2 x 2 x length x hidden per real token and layer (padded length)
        self.attention_flops += 4.0 * attention_mask.shape[1] * c.hidden_size * c.num_hidden_layers * int(lengths.sum())
        return out


def measure_path(embedder: Embedder, texts: list[str], batch: int, linear_flops_per_token: float,
                 max_seconds: float) -> dict:
    """texts/s of `embed` at `batch` texts per call, and the split of its time."""
    embedder._cache.clear()
    embedder.embed(texts[:batch])  # warm-up (and the model load)
    timer = ForwardTimer(embedder.model)
    embedder._models[embedder.backend] = timer  # the Embedder calls its backend's model(...): now timed
    tokenize_s, total_s, done = 0.0, 0.0, 0
    try:
        while done < len(texts) and (done == 0 or total_s < max_seconds):
            part = texts[done:done + batch]
            embedder._cache.clear()
            t0 = time.perf_counter()
            ids = embedder.tokenize(part)
            t1 = time.perf_counter()
            embedder.embed_ids(ids)
            tokenize_s += t1 - t0
            total_s += time.perf_counter() - t0
            done += len(part)
    finally:
        embedder._models[embedder.backend] = timer.model
        embedder._cache.clear()
    real_flops = linear_flops_per_token * timer.real + timer.attention_flops
    return {"texts": done, "texts_per_s": done / total_s, "seconds": total_s,
            "split_s": {"tokenize": tokenize_s, "forward": timer.seconds, "rest": total_s - tokenize_s - timer.seconds},
            "real_tokens": timer.real, "padded_tokens": timer.padded,
            "padding_waste": timer.padded / timer.real - 1.0,
            "achieved_flops": real_flops / timer.seconds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedder", default="minilm-l6")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=256, help="texts per call (besides 1)")
    p.add_argument("--short", type=int, default=512)
    p.add_argument("--paragraphs", type=int, default=64)
    p.add_argument("--max-seconds", type=float, default=10.0, help="time cap of each path's run")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    texts = text_sets(args.short, args.paragraphs)
    reference = Embedder(args.embedder, progress=False, dtype="float32", backend="torch")
    model = reference.model
    shapes = linear_shapes(model)
    linear_flops_per_token = 2.0 * sum(i * o * n for i, o, n in shapes)
    rows = reference.batch_tokens // 4  # a forward's token rows: the torch budget (8192) over 4, ~2k
    peak = peaks(shapes, rows)
    results = {}
    for name, kw in PATHS.items():
        embedder = Embedder(args.embedder, progress=False, **kw)
        results[name] = {}
        for kind in ("short", "paragraphs"):
            for batch in (1, args.batch if kind == "short" else min(args.batch, args.paragraphs)):
                m = measure_path(embedder, texts[kind], batch, linear_flops_per_token, args.max_seconds)
                m["fraction_of_peak"] = m["achieved_flops"] / peak[PEAK_OF[name]]["peak_flops"]
                results[name][f"{kind}-batch{batch}"] = m
                print(f"{name:15s} {kind:10s} batch {batch:3d}: {m['texts_per_s']:7.1f} texts/s, "
                      f"{m['achieved_flops'] / 1e9:6.1f} GFLOP/s = {100 * m['fraction_of_peak']:5.1f} % of peak; "
                      f"forward {m['split_s']['forward'] / m['seconds']:.0%}, tokenise "
                      f"{m['split_s']['tokenize'] / m['seconds']:.0%}, padding +{m['padding_waste']:.0%}", flush=True)
    report = {"embedder": args.embedder, "threads": args.threads,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
                          "bf16_native": bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()),
                          "amx": bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()),
                          "load_average_1_5_15_before": load_before, "load_average_1_5_15_after": os.getloadavg()},
              "linear_shapes_in_out_count": shapes, "linear_flops_per_token": linear_flops_per_token,
              "peak_rows": rows, "peak": peak, "paths": results}
    for dtype, v in peak.items():
        print(f"peak {dtype:17s} {v['peak_flops'] / 1e9:7.1f} GFLOP/s")
    write_json(args.json, report, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
