"""The largest requests the cost budget accepts: their time and the server's extra memory; and what
becomes of requests past it.

Starts the server on 127.0.0.1 (default settings unless --embedder etc. say otherwise, a temporary
task store), then sends, one at a time:
1. head-heavy: 256 examples with 32 labels, one-vs-rest, n_permutations 4 and 32 texts: 98304 head
   tokens, just under max_head_tokens=100000 (asserted from the server's own cost module);
2. embedder-heavy: paragraphs (about 250 tokens each), as many examples and texts as fit under
   max_embed_tokens;
3. the issue's 86-second request (256 examples, 32 labels, ovo, 8 permutations, 128 texts): 413;
4. /tasks/create with 256 examples of ~2000 characters: 413 (it was a 503 after 20 s);
each --repeats times, with new texts each time (none from the embedder's cache). For each: status, seconds, and the peak resident memory of every server process
above its level before the request (sampled every 50 ms).

    python benchmarks/serve_cost.py --json benchmarks/results/serve_cost.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tart.data import load_dataset  # noqa: E402
from tart.serving.launch import LocalServer  # noqa: E402
from tart.serving.settings import Settings  # noqa: E402


class PeakMemory:
    """Peak RSS of each process of the server while a request runs, above its RSS at the start."""

    def __init__(self, root_pid: int):
        root = psutil.Process(root_pid)
        self.procs = [root, *root.children(recursive=True)]
        self.base = {p.pid: p.memory_info().rss for p in self.procs}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            for p in self.procs:
                try:
                    self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def result(self) -> dict:
        extra = {pid: (self.peak[pid] - self.base[pid]) / 2**20 for pid in self.base}
        return {"max_extra_mb_one_process": max(extra.values()), "sum_extra_mb": sum(extra.values()),
                "peak_rss_mb_by_process": {str(p): self.peak[p] / 2**20 for p in self.peak}}


def requests_to_send(max_embed_tokens: int):
    glosses = load_dataset("wordnet-6way")
    short = [t for t in glosses.texts][:400]
    fortunes = load_dataset("fortunes-computers-politics").texts
    paragraphs, cur = [], ""
    for t in fortunes:  # ~1000 characters: about 250 SmolLM2 tokens
        cur = f"{cur} {t}".strip()
        if len(cur) >= 900:
            paragraphs.append(cur[:1000])
            cur = ""
    head_heavy = {"examples": [{"text": short[i], "label": f"label-{i % 32}"} for i in range(256)],
                  "texts": short[256:288], "options": {"n_permutations": 4}}
    para = lambda i: f"{paragraphs[i % len(paragraphs)]} ({i})"  # noqa: E731  (each text new)
    n_par = max_embed_tokens // 260
    k = min(2 * n_par // 3, 256)
    embed_heavy = {"examples": [{"text": para(i), "label": "ab"[i % 2]} for i in range(k)],
                   "texts": [para(i) for i in range(k, n_par)]}
    issue_request = {"examples": [{"text": short[i], "label": f"label-{i % 32}"} for i in range(256)],
                     "texts": short[256:384], "options": {"n_permutations": 8, "multiclass": "ovo"}}
    big_task = {"name": "big", "examples": [{"text": (paragraphs[i % len(paragraphs)] * 2)[:1990] + f" {i}",
                                             "label": "ab"[i % 2]} for i in range(256)]}
    return [("head-heavy /classify", "/classify", head_heavy), ("embedder-heavy /classify", "/classify", embed_heavy),
            ("issue's 86 s request /classify", "/classify", issue_request),
            ("256 x 2000-character task /tasks/create", "/tasks/create", big_task)]


def fresh(payload: dict, repeat: int) -> dict:
    """The same request with every text new (the embedder keeps the embeddings of texts it saw)."""
    tag = f" [{repeat}]"
    out = {**payload, "examples": [{**e, "text": e["text"][:1990] + tag} for e in payload["examples"]]}
    if "texts" in payload:
        out["texts"] = [t[:1990] + tag for t in payload["texts"]]
    if "name" in payload:
        out["name"] = f"{payload['name']}-{repeat}"
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedder", default=Settings().embedder)
    p.add_argument("--checkpoint", default=Settings().checkpoint)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--embed-threads", type=int, default=0, help="torch threads of the embedder (0: torch's default)")
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)
    settings = Settings()
    store = Path(tempfile.mkdtemp(prefix="tart-cost-")) / "tasks.sqlite3"
    env = {"TART_CHECKPOINT": args.checkpoint, "TART_EMBEDDER": args.embedder, "TART_STORE_PATH": str(store),
           "TART_CONFIG": "", "TART_EMBED_THREADS": str(args.embed_threads)}
    results = []
    with LocalServer(env) as server:
        for name, route, payload in requests_to_send(settings.max_embed_tokens):
            for repeat in range(args.repeats):
                payload = fresh(payload, repeat)
                with PeakMemory(server.proc.pid) as mem:
                    t0 = time.perf_counter()
                    r = httpx.post(server.url + route, json=payload, timeout=300)
                    seconds = time.perf_counter() - t0
                body = r.json()
                row = {"request": name, "repeat": repeat, "status": r.status_code, "seconds": seconds,
                       "examples": len(payload["examples"]), "texts": len(payload.get("texts", [])),
                       "error": body.get("error"), **mem.result()}
                if r.status_code == 200 and "predictions" in body:
                    row["tokens_of_texts"] = sum(p["tokens"] for p in body["predictions"])
                results.append(row)
                print(f"{name} #{repeat}: {r.status_code} in {seconds:.2f} s, +{row['max_extra_mb_one_process']:.0f} MB "
                      f"(one process), {(body.get('error') or '')[:160]}", flush=True)
        stats = httpx.post(server.url + "/stats", timeout=30).json()
    out = {"config": {**vars(args), "max_embed_tokens": settings.max_embed_tokens,
                      "max_head_tokens": settings.max_head_tokens},
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_1_5_15": os.getloadavg()},
           "embedder_dtype": stats["embedder"].get("dtype"), "results": results}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
