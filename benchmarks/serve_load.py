"""Load benchmark of the HTTP service against the raw embedder, in one run.

1. Starts the server on 127.0.0.1 (a free port, a temporary task store), registers one task
   (k labelled examples from a bundled dataset).
2. For --duration seconds, --clients concurrent clients loop on `POST /tasks/classify` with
   --texts-per-request new texts each (never repeated, so no cache helps), then stop. Then the same
   for `POST /classify` with the task's examples sent inline (`--endpoints` picks which; both by
   default, one after the other, in the same run and server; with --mixed, both at once, the clients
   split between them, so both see the same machine load: the fair comparison of their latencies).
3. Stops the server, and embeds the very texts the server saw with the embedder alone (no HTTP),
   in batches of the server's `embed_max_batch_size`. The raw embedder is also timed once before the
   server starts (on the first texts of the same stream); the ratio uses the faster of the two, so
   noise on a shared machine cannot flatter the server.
4. Prints requests/s, texts/s, p50/p99 latency, errors, the raw embedder's texts/s, their ratio,
   and the embedder counters showing the task's examples were not embedded again.

    python -m benchmarks.serve_load --duration 30 --clients 24 --json serve_load.json
    python -m benchmarks.serve_load --mixed --duration 30 --clients 16 --json serve_load-mixed.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from tart.data.datasets import load_dataset
from tart.lm.dtype import resolve_dtype
from tart.serving.settings import Settings
from tests.local_server import LocalServer


def text_stream(texts: list[str]):
    """The dataset's texts, then the same texts marked with a round number: every text is new."""
    round_ = 0
    while True:
        for t in texts:
            yield t if round_ == 0 else f"{t} ({round_})"
        round_ += 1


async def run_load(url: str, endpoints: list[str], task_id: str, examples: list, texts, labels: dict, args) -> dict:
    """Clients loop until the deadline; client i calls endpoints[i % len(endpoints)]. Per endpoint:
    requests/s, texts/s, latency percentiles, errors, accuracy of the first pass over the data."""
    rec = {e: {"latencies": [], "errors": {}, "sent": [], "correct": 0, "scored": 0} for e in endpoints}
    deadline = time.perf_counter() + args.duration

    async def client(http: httpx.AsyncClient, endpoint: str):
        r_ = rec[endpoint]
        while time.perf_counter() < deadline:
            batch = [next(texts) for _ in range(args.texts_per_request)]
            start = time.perf_counter()
            try:
                payload = {"task_id": task_id, "texts": batch} if endpoint == "/tasks/classify" else \
                    {"examples": examples, "texts": batch}
                r = await http.post(url + endpoint, json=payload)
                status = r.status_code
            except httpx.HTTPError as err:
                status = type(err).__name__
            if status == 200:
                r_["latencies"].append(time.perf_counter() - start)
                r_["sent"].extend(batch)
                for text, p in zip(batch, r.json()["predictions"]):
                    if text in labels:
                        r_["scored"] += 1
                        r_["correct"] += p["label"] == labels[text]
            else:
                r_["errors"][str(status)] = r_["errors"].get(str(status), 0) + 1

    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http, endpoints[i % len(endpoints)]) for i in range(args.clients)))
        elapsed = time.perf_counter() - t0
    out = {}
    for e, r_ in rec.items():
        lat = np.array(r_["latencies"]) * 1000 if r_["latencies"] else np.array([np.nan])
        out[e] = {"elapsed_s": elapsed, "clients": sum(1 for i in range(args.clients) if endpoints[i % len(endpoints)] == e),
                  "requests": len(r_["latencies"]), "errors": sum(r_["errors"].values()), "errors_by_status": r_["errors"],
                  "requests_per_s": len(r_["latencies"]) / elapsed, "texts_per_s": len(r_["sent"]) / elapsed,
                  "latency_ms_p50": float(np.percentile(lat, 50)), "latency_ms_p99": float(np.percentile(lat, 99)),
                  "latency_ms_max": float(lat.max()),
                  "accuracy_first_pass": r_["correct"] / r_["scored"] if r_["scored"] else None, "texts_sent": r_["sent"]}
    return out


def raw_embedder(name: str, texts: list[str], batch_size: int, max_seconds: float, dtype: str) -> dict:
    """Embed `texts` in order, in batches, without HTTP; stop after the batch that passes max_seconds."""
    from tart.lm.embedder import Embedder

    embedder = Embedder(name, progress=False, dtype=dtype)  # a fresh in-memory cache: every text is embedded
    embedder.embed(["warm-up"])
    forwards, done = embedder.n_forward_calls, 0
    start = time.perf_counter()
    while done < len(texts) and (done == 0 or time.perf_counter() - start < max_seconds):
        embedder.embed(texts[done:done + batch_size])
        done += len(texts[done:done + batch_size])
    elapsed = time.perf_counter() - start
    return {"texts": done, "elapsed_s": elapsed, "texts_per_s": done / elapsed,
            "forward_calls": embedder.n_forward_calls - forwards}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    p.add_argument("--clients", type=int, default=24, help="concurrent clients (default 24)")
    p.add_argument("--texts-per-request", type=int, default=4)
    p.add_argument("--k", type=int, default=16, help="labelled examples in the registered task")
    p.add_argument("--dataset", default="wordnet-animal-food")
    p.add_argument("--embedder", default=Settings().embedder)
    p.add_argument("--checkpoint", default=Settings().checkpoint)
    p.add_argument("--max-batch-size", type=int, default=Settings().embed_max_batch_size)
    p.add_argument("--raw-seconds", type=float, default=30.0, help="time budget of each raw embedder run")
    p.add_argument("--dtype", default="auto", help="embedder weights: auto, bfloat16, float32")
    p.add_argument("--endpoints", default="/tasks/classify,/classify", help="endpoints to load")
    p.add_argument("--mixed", action="store_true",
                   help="load the endpoints at once (clients split between them: the same machine load for "
                        "each), instead of one after the other")
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)

    data = load_dataset(args.dataset)
    order = np.random.default_rng(0).permutation(len(data))
    per_class = {c: [i for i in order if data.labels[i] == c][: args.k // len(data.classes)] for c in data.classes}
    support = [i for idx in per_class.values() for i in idx]
    queries = [i for i in order if i not in set(support)]
    labels = {data.texts[i]: str(data.labels[i]) for i in queries}

    stream_start = [data.texts[i] for i in queries][:512]
    dtype = str(resolve_dtype(args.dtype)).replace("torch.", "")  # the server and the raw runs use the same
    raw_before = raw_embedder(args.embedder, stream_start, args.max_batch_size, args.raw_seconds, dtype)
    print(f"raw embedder before the load: {raw_before['texts_per_s']:.1f} texts/s", file=sys.stderr, flush=True)
    store = Path(tempfile.mkdtemp(prefix="tart-bench-")) / "tasks.sqlite3"
    env = {"TART_CHECKPOINT": args.checkpoint, "TART_EMBEDDER": args.embedder, "TART_STORE_PATH": str(store),
           "TART_CONFIG": "", "TART_EMBED_MAX_BATCH_SIZE": str(args.max_batch_size),
           "TART_MAX_CONCURRENCY": str(max(64, 2 * args.clients)), "TART_EMBED_DTYPE": dtype}
    endpoints = args.endpoints.split(",")
    loads, stats = {}, {}
    texts = text_stream([data.texts[i] for i in queries])
    with LocalServer(env) as server:
        examples = [{"text": data.texts[i], "label": str(data.labels[i])} for i in support]
        task = httpx.post(server.url + "/tasks/create", json={"name": "bench", "examples": examples}, timeout=300)
        task.raise_for_status()
        task_id = task.json()["id"]
        phases = [endpoints] if args.mixed else [[e] for e in endpoints]
        for phase in phases:
            before = httpx.post(server.url + "/stats", timeout=30).json()
            loads.update(asyncio.run(run_load(server.url, phase, task_id, examples, texts, labels, args)))
            after = httpx.post(server.url + "/stats", timeout=30).json()
            for endpoint in phase:
                stats[endpoint] = (before, after)
    sent = [t for load in loads.values() for t in load.pop("texts_sent")]
    print(f"load done: {sum(x['requests'] for x in loads.values())} requests, "
          f"{sum(x['errors'] for x in loads.values())} errors; timing the raw embedder again", file=sys.stderr, flush=True)
    raw_after = raw_embedder(args.embedder, sent, args.max_batch_size, args.raw_seconds, dtype)
    raw = max(raw_before, raw_after, key=lambda r: r["texts_per_s"])
    result = {
        "config": {**{k: v for k, v in vars(args).items() if k != "json"}, "dtype_used": dtype},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1_5_15": os.getloadavg()},
        "raw_embedder": {"before_load": raw_before, "after_load_same_texts": raw_after,
                         "texts_per_s": raw["texts_per_s"]},
        "endpoints": {},
    }
    for endpoint, load in loads.items():
        before, after = stats[endpoint]
        batches = after["embedder"]["batches"] - before["embedder"]["batches"]
        embedded = after["embedder"]["texts"] - before["embedder"]["texts"]
        result["endpoints"][endpoint] = {
            "serving": load, "ratio_serving_to_raw": load["texts_per_s"] / raw["texts_per_s"],
            "embedder_counters (all endpoints of the phase)": {
                "texts_sent_to_embedder": embedded, "adaptive_batches": batches,
                "mean_texts_per_batch": embedded / max(batches, 1),
                "task_examples_from_cache": after["service"]["examples_from_cache"] - before["service"]["examples_from_cache"],
                "task_examples_reembedded": after["service"]["examples_reembedded"] - before["service"]["examples_reembedded"],
            }}
        s, c = load, result["endpoints"][endpoint]["embedder_counters (all endpoints of the phase)"]
        print(f"{endpoint}: {s['requests_per_s']:.1f} req/s, {s['texts_per_s']:.1f} texts/s, p50 {s['latency_ms_p50']:.0f} ms, "
              f"p99 {s['latency_ms_p99']:.0f} ms, {s['errors']} errors, {s['requests']} requests in {s['elapsed_s']:.1f} s; "
              f"ratio to raw {result['endpoints'][endpoint]['ratio_serving_to_raw']:.2f}; "
              f"{c['texts_sent_to_embedder']} texts to the embedder in {c['adaptive_batches']} batches")
    total = sum(x["texts_per_s"] for x in loads.values()) if args.mixed else None
    if total is not None:
        result["mixed_texts_per_s"] = total
        result["ratio_mixed_serving_to_raw"] = total / raw["texts_per_s"]
        print(f"both at once: {total:.1f} texts/s, ratio to raw {total / raw['texts_per_s']:.2f}")
    print(f"raw:      {raw_after['texts_per_s']:.1f} texts/s embedding the same {raw_after['texts']} texts without "
          f"HTTP ({raw_before['texts_per_s']:.1f} texts/s on {raw_before['texts']} texts before the load)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if all(x["errors"] == 0 for x in loads.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
