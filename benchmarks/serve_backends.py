"""`/tasks/classify` under load, one server per embedder backend, in one run (issue 27).

One server per backend (e.g. today's `torch`, bfloat16 on a CPU with fast bfloat16, against the default
`auto`), each with the same registered task (k examples of a bundled dataset). Then, for each shape, the
backends take turns (--rounds times each, in alternating order, so that drift in the machine's load falls
on both): --clients concurrent clients loop for --duration seconds on requests of
  - short: 64 new short texts (WordNet glosses, ~12 words), or
  - paragraphs: 8 new paragraphs (fortunes joined to ~1,000 characters),
and texts/s, p50 and p99 latency and errors are recorded. Every text is new (a round mark is appended
when the data runs out), so no cache helps. Prints the table and each shape's ratio auto / torch.

    python -m benchmarks.serve_backends --json results/benchmarks/serve_backends.json
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np

from benchmarks import write_json
from benchmarks.embed_dtype import text_sets
from benchmarks.serve_load import run_load, text_stream
from tart.data.datasets import load_dataset
from tests.local_server import LocalServer

SHAPES = {"short": 64, "paragraphs": 8}  # texts per request


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="torch,auto", help="the first is the baseline of the ratios")
    p.add_argument("--clients", default="1,32")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of load per turn")
    p.add_argument("--rounds", type=int, default=2, help="turns per backend and shape")
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--embedder", default="minilm-l6")
    p.add_argument("--json")
    args = p.parse_args(argv)
    backends, client_counts = args.backends.split(","), [int(c) for c in args.clients.split(",")]

    data = load_dataset("wordnet-animal-food")
    order = np.random.default_rng(0).permutation(len(data))
    support = [i for c in data.classes for i in [j for j in order if data.labels[j] == c][: args.k // len(data.classes)]]
    examples = [{"text": data.texts[i], "label": str(data.labels[i])} for i in support]
    pools = {"short": [data.texts[i] for i in order if i not in set(support)],
             "paragraphs": text_sets(0, 64)["paragraphs"]}
    streams = {kind: text_stream(texts) for kind, texts in pools.items()}  # shared: every request's texts are new

    servers, tasks, runs = {}, {}, []
    with contextlib.ExitStack() as stack:
        for backend in backends:
            store = Path(tempfile.mkdtemp(prefix="tart-bench-")) / "tasks.sqlite3"
            env = {"TART_EMBEDDER": args.embedder, "TART_EMBED_BACKEND": backend, "TART_STORE_PATH": str(store),
                   "TART_CONFIG": "", "TART_MAX_CONCURRENCY": str(max(64, 2 * max(client_counts))),
                   "TART_MAX_EMBED_TOKENS": "4096"}  # 8 paragraphs are ~2,000 tokens: over the default 1,536
            servers[backend] = stack.enter_context(LocalServer(env))
            r = httpx.post(servers[backend].url + "/tasks/create", json={"name": "bench", "examples": examples},
                           timeout=600)
            r.raise_for_status()
            tasks[backend] = r.json()["id"]
            print(f"{backend}: server ready", file=sys.stderr, flush=True)
        for clients in client_counts:
            for kind, per_request in SHAPES.items():
                for round_ in range(args.rounds):
                    for backend in backends if round_ % 2 == 0 else backends[::-1]:
                        load_args = argparse.Namespace(duration=args.duration, texts_per_request=per_request,
                                                       clients=clients)
                        out = asyncio.run(run_load(servers[backend].url, ["/tasks/classify"], tasks[backend],
                                                   examples, streams[kind], {}, load_args))["/tasks/classify"]
                        out.pop("texts_sent")
                        runs.append({"backend": backend, "clients": clients, "texts": kind, "round": round_, **out})
                        print(f"{backend:>6} {clients:>2} clients {kind:>10}: {out['texts_per_s']:7.1f} texts/s, "
                              f"p50 {out['latency_ms_p50']:7.0f} ms, p99 {out['latency_ms_p99']:7.0f} ms, "
                              f"{out['errors']} errors", file=sys.stderr, flush=True)

    table = []
    for clients in client_counts:
        for kind in SHAPES:
            row = {"clients": clients, "texts": kind}
            for backend in backends:
                mine = [r for r in runs if r["backend"] == backend and r["clients"] == clients and r["texts"] == kind]
                row[backend] = {"texts_per_s": float(np.mean([r["texts_per_s"] for r in mine])),
                                "latency_ms_p50": float(np.median([r["latency_ms_p50"] for r in mine])),
                                "latency_ms_p99": float(np.max([r["latency_ms_p99"] for r in mine])),
                                "errors": sum(r["errors"] for r in mine)}
            for backend in backends[1:]:
                row[f"ratio_{backend}_to_{backends[0]}"] = row[backend]["texts_per_s"] / max(row[backends[0]]["texts_per_s"], 1e-9)
            table.append(row)
            print(f"{clients:>2} clients, {kind:>10}: " + ", ".join(
                f"{b} {row[b]['texts_per_s']:.1f} texts/s (p50 {row[b]['latency_ms_p50']:.0f} / p99 "
                f"{row[b]['latency_ms_p99']:.0f} ms)" for b in backends) + "".join(
                f"; {b}/{backends[0]} {row[f'ratio_{b}_to_{backends[0]}']:.2f}x" for b in backends[1:]))
    result = {"config": {k: v for k, v in vars(args).items() if k != "json"},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average_1_5_15": os.getloadavg()},
              "table": table, "runs": runs}
    if args.json:
        write_json(args.json, result)
    return 0 if all(r["errors"] == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
