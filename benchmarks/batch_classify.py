"""`tart classify` on a corpus: throughput against the raw embedder, peak memory against corpus size, Ray.

1. Local engine, 20,000 texts (the bundled WordNet glosses and opinion words, cycled, each made unique
   by a "#i" tail), in a fresh process: texts/s of the whole job (read, embed, head, journal, finish),
   and the raw embedder's texts/s on the same texts in the same process and chunking, half of them
   before the job and half after, so a drift in the machine's load hits both (goal: job >= 0.9x).
2. Peak RSS (ru_maxrss of the process, read right after the job; both processes do the same work on
   5,000 and on 20,000 texts, each in its own process; goal: within 10 %).
   With --backends, both are run once per embedder backend (e.g. torch, today's, against auto, the
   default), and the ratios of texts/s are reported.
3. Ray engine on a local Ray (--ray-cpus CPUs): start-up (ray.init, then a 16-text job: actors start,
   load the embedder and fit the task), then texts/s on --ray-n texts with 1 and with 2 actors.
The machine's load average is recorded: the VM is shared, numbers move with it.

    nice -n 19 python -m benchmarks.batch_classify --json results/benchmarks/batch_classify.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_corpus(path: Path, n: int) -> None:
    from tart.data.datasets import list_datasets, load_dataset

    # short texts (WordNet glosses, opinion words): a few minutes for the whole benchmark on 2 cores
    pool = [t for name in list_datasets() if not name.startswith("fortunes") for t in load_dataset(name).texts]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"doc-{i}", "text": f"{pool[i % len(pool)]} #{i}"}) + "\n")


def spec_for(embedder: str):
    from tart.corpus.job import TaskSpec
    from tart.data.datasets import load_dataset
    from tart.data.splits import balanced_split

    support, _ = balanced_split(load_dataset("wordnet-animal-food"), k=16, seed=0)
    return TaskSpec.from_examples(support.texts, support.labels, embedder=embedder)


def child(args) -> dict:
    """One measured job in this (fresh) process; with --raw, the raw embedder on the same texts around it."""
    from tart.corpus.job import classify_corpus

    spec = spec_for(args.embedder)
    labeller = spec.load()
    labeller(["warm-up text"])
    raw_n, raw_s = 0, 0.0
    if args.raw:
        raw_n, raw_s = raw_pass(labeller.embedder, args, first_half=True)
    out = Path(args.workdir) / f"out-{args.child}.jsonl"
    t = time.perf_counter()
    stats = classify_corpus(spec, args.corpus, str(out), id_column="id", chunk_size=args.chunk_size,
                            progress=False, labeller=labeller)
    seconds = time.perf_counter() - t
    result = {"texts": stats["texts"], "seconds": round(seconds, 2), "texts_per_s": round(stats["texts"] / seconds, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if args.raw:
        n, t = raw_pass(labeller.embedder, args, first_half=False)
        raw_n, raw_s = raw_n + n, raw_s + t
        result.update(raw_texts=raw_n, raw_seconds=round(raw_s, 2), raw_texts_per_s=round(raw_n / raw_s, 1),
                      ratio=round(result["texts_per_s"] / (raw_n / raw_s), 3))
    return result


def raw_pass(embedder, args, first_half: bool) -> tuple[int, float]:
    """The embedder alone on half of the corpus's chunks (the same chunks as the job)."""
    from tart.corpus.reader import read_corpus

    n_chunks = -(-sum(1 for _ in open(args.corpus)) // args.chunk_size)
    n, t = 0, time.perf_counter()
    for i, (_, texts) in enumerate(read_corpus(args.corpus, id_column="id", chunk_size=args.chunk_size)):
        if (i < n_chunks // 2) == first_half:
            embedder._cache.clear()
            embedder.embed(texts)
            n += len(texts)
    return n, time.perf_counter() - t


def run_child(args, corpus: Path, name: str, raw: bool, backend: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.batch_classify", "--child", name, "--corpus", str(corpus), "--workdir", args.workdir,
           "--embedder", args.embedder, "--chunk-size", str(args.chunk_size)] + (["--raw"] if raw else [])
    env = {**os.environ, **({"TART_EMBED_BACKEND": backend} if backend else {})}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def ray_part(args, corpus_small: Path, corpus: Path) -> dict:
    import ray

    from tart.corpus.ray_engine import classify_corpus_ray

    spec = spec_for(args.embedder)
    t = time.perf_counter()
    ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False)
    result = {"ray_cpus": args.ray_cpus, "ray_init_seconds": round(time.perf_counter() - t, 2)}
    t = time.perf_counter()
    classify_corpus_ray(spec, str(corpus_small), str(Path(args.workdir) / "ray-start.parquet"), id_column="id",
                        chunk_size=args.chunk_size, actors=1)
    result["first_job_16_texts_seconds"] = round(time.perf_counter() - t, 2)
    for actors in (1, 2):
        t = time.perf_counter()
        classify_corpus_ray(spec, str(corpus), str(Path(args.workdir) / f"ray-{actors}.parquet"), id_column="id",
                            chunk_size=args.chunk_size, actors=actors)
        seconds = time.perf_counter() - t
        result[f"actors_{actors}"] = {"texts": args.ray_n, "seconds": round(seconds, 2),
                                      "texts_per_s": round(args.ray_n / seconds, 1)}
    ray.shutdown()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default=None)
    p.add_argument("--embedder", default="minilm-l6")
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--small", type=int, default=5_000)
    p.add_argument("--ray-n", type=int, default=2_000)
    p.add_argument("--ray-cpus", type=int, default=2)
    p.add_argument("--chunk-size", type=int, default=512)
    p.add_argument("--no-ray", action="store_true")
    p.add_argument("--backends", default=None,
                   help="comma-separated embedder backends, each job run once per backend (default: the default "
                        "backend only); the raw embedder is timed around the last one's jobs")
    # internal: one measured job in a child process
    p.add_argument("--child", default=None)
    p.add_argument("--corpus", default=None)
    p.add_argument("--workdir", default=None)
    p.add_argument("--raw", action="store_true")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory(prefix="tart-batch-bench-") as workdir:
        args.workdir = workdir
        corpora = {}
        for name, n in (("large", args.n), ("small", args.small), ("ray", args.ray_n), ("tiny", 16)):
            corpora[name] = Path(workdir) / f"{name}.jsonl"
            write_corpus(corpora[name], n)
        t0 = time.perf_counter()
        report = {"embedder": args.embedder, "chunk_size": args.chunk_size, "torch_threads_env":
                  os.environ.get("OMP_NUM_THREADS"), "cpus": os.cpu_count(), "platform": platform.platform(),
                  "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
        backends = args.backends.split(",") if args.backends else [None]
        for backend in backends:
            raw, key = backend == backends[-1], f"_{backend}" if backend else ""
            report[f"local_large{key}"] = run_child(args, corpora["large"], f"large{key}", raw=raw, backend=backend)
            # the same work, less of it
            report[f"local_small{key}"] = run_child(args, corpora["small"], f"small{key}", raw=raw, backend=backend)
            report[f"rss_ratio_large_over_small{key}"] = round(report[f"local_large{key}"]["peak_rss_mb"]
                                                               / report[f"local_small{key}"]["peak_rss_mb"], 3)
            print(json.dumps({k: v for k, v in report.items() if k.endswith(key)}), file=sys.stderr, flush=True)
        for backend in backends[:-1]:  # each backend against the last, same corpus, same run
            for size in ("large", "small"):
                report[f"ratio_{size}_{backends[-1]}_over_{backend}"] = round(
                    report[f"local_{size}_{backends[-1]}"]["texts_per_s"] / report[f"local_{size}_{backend}"]["texts_per_s"], 3)
        if not args.no_ray:
            report["ray"] = ray_part(args, corpora["tiny"], corpora["ray"])
        report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
