"""What the service adds to the library: a registered task's /tasks/classify request vs the same work as
one in-process library call (embed the texts, then `predict_proba` of the task's fitted classifier, fitted
as the service fits it: on the examples and the embedded names of their labels).

Starts the server on 127.0.0.1 (a temporary task store), registers a task of k examples, then for
each round of n new texts, one at a time: the request to the server and the library call in this
process (same embedder, dtype and backend as the server's; each side has its own embedding cache, so
neither has seen the texts), in alternating order so drift in the host's load hits both sides alike.
Reports p50 / mean of each side, their ratio, and whether the labels agree; warm-up rounds are not
counted.

    python -m benchmarks.serve_overhead --json results/benchmarks/serve_overhead.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks import write_json
from tart.classifier import TartClassifier
from tart.data.datasets import load_dataset
from tart.data.label_names import name_texts
from tart.lm.dtype import resolve_dtype
from tart.lm.embedder import load_embedder
from tart.serving.cost import QUERY_BATCH
from tart.serving.settings import Settings
from tests.local_server import LocalServer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedder", default=Settings().embedder)
    p.add_argument("--checkpoint", default=Settings().checkpoint)
    p.add_argument("--dataset", default="wordnet-6way")
    p.add_argument("--k", type=int, default=64, help="the task's examples")
    p.add_argument("--texts", type=int, default=64, help="texts per request")
    p.add_argument("--requests", type=int, default=20, help="timed requests per side")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)

    settings = Settings()
    dtype = str(resolve_dtype(settings.embed_dtype)).replace("torch.", "")  # both sides use the same
    data = load_dataset(args.dataset)
    order = np.random.default_rng(0).permutation(len(data))
    support, rest = order[:args.k], order[args.k:]
    examples = [{"text": data.texts[i], "label": str(data.labels[i])} for i in support]
    rounds = args.warmup + args.requests
    # distinct texts for every request of both sides: a numbered copy when the data runs out
    texts = [f"{data.texts[rest[j % len(rest)]]} ({j // len(rest)})" if j >= len(rest) else data.texts[rest[j]]
             for j in range(rounds * args.texts)]
    batches = [texts[i * args.texts:(i + 1) * args.texts] for i in range(rounds)]

    store = Path(tempfile.mkdtemp(prefix="tart-overhead-")) / "tasks.sqlite3"
    env = {"TART_CHECKPOINT": args.checkpoint, "TART_EMBEDDER": args.embedder, "TART_STORE_PATH": str(store),
           "TART_CONFIG": "", "TART_EMBED_DTYPE": dtype, "TART_MAX_EMBED_TOKENS": "65536"}
    embedder = load_embedder(args.embedder, progress=False, dtype=dtype, backend=settings.embed_backend)
    clf = TartClassifier(head=args.checkpoint, embedder=None, n_permutations=settings.n_permutations,
                         random_state=0, query_batch_size=QUERY_BATCH)
    labels = [e["label"] for e in examples]
    # as the service fits a registered task by default: the examples and their labels' names
    clf.fit(embedder.embed([e["text"] for e in examples]), labels,
            name_vectors=embedder.embed(name_texts(labels, "auto", args.embedder)))
    service_s, library_s, agree = [], [], []
    with LocalServer(env) as server, httpx.Client(timeout=300) as client:
        task = client.post(server.url + "/tasks/create", json={"name": "overhead", "examples": examples})
        task.raise_for_status()
        task_id = task.json()["id"]
        def service():
            answer = client.post(server.url + "/tasks/classify", json={"task_id": task_id, "texts": batch})
            answer.raise_for_status()
            return [p["label"] for p in answer.json()["predictions"]]

        def library():
            return clf.predict(embedder.embed(batch)).tolist()

        for r, batch in enumerate(batches):
            timed = {}
            for side in (service, library) if r % 2 == 0 else (library, service):
                t0 = time.perf_counter()
                timed[side.__name__] = (side(), time.perf_counter() - t0)
            if r >= args.warmup:
                service_s.append(timed["service"][1])
                library_s.append(timed["library"][1])
            agree.append(float(np.mean(np.array(timed["service"][0]) == np.array(timed["library"][0]))))
            print(f"round {r}: service {timed['service'][1]:.3f} s, library {timed['library'][1]:.3f} s",
                  file=sys.stderr, flush=True)
        stats = client.post(server.url + "/stats").json()

    def summary(xs):
        return {"p50_s": statistics.median(xs), "mean_s": statistics.mean(xs), "min_s": min(xs), "max_s": max(xs)}

    result = {"config": {**{k: v for k, v in vars(args).items() if k != "json"}, "dtype": dtype,
                         "backend": stats["embedder"].get("backend"), "n_permutations": settings.n_permutations,
                         "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average_1_5_15": os.getloadavg()},
              "service": summary(service_s), "library": summary(library_s),
              "p50_ratio_service_over_library": statistics.median(service_s) / statistics.median(library_s),
              "labels_equal_fraction": float(np.mean(agree)),
              "fitted_cache": {"hits": stats["service"]["fitted_cache_hits"],
                               "misses": stats["service"]["fitted_cache_misses"]}}
    print(json.dumps({k: result[k] for k in ("service", "library", "p50_ratio_service_over_library",
                                               "labels_equal_fraction")}, indent=1))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
