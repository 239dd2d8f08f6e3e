"""The largest requests the cost budget accepts: their time and the server's extra memory; and what
becomes of requests past it.

Starts the server on 127.0.0.1 (default settings unless --embedder etc. say otherwise, a temporary
task store), then sends, one at a time, requests built with the server's own cost module
(`serving.cost`: the embedder's tokenizer; the head's cost as the classifier plans it, for the head in use):
1. largest: at both budgets at once: 32 labels (more than a multi-class head's slots, so binary
   problems), the examples, orders and texts that bring the head's cost closest to max_head_tokens,
   every text lengthened until the embedder's cost is just under max_embed_tokens;
2. head-heavy: the same head cost, texts as short as they come;
3. embedder-heavy: paragraphs (up to 256 tokens each), two labels, as many as fit under max_embed_tokens;
4. the issue's 86-second request (256 examples, 32 labels, ovo, 8 permutations, 128 texts): 413;
5. /tasks/create with 256 examples of ~2000 characters: 413 (it was a 503 after 20 s);
each --repeats times, with new texts each time (none from the embedder's cache). For each: status,
seconds, both costs, and the peak resident memory of every server process above its level before
the request (sampled every 50 ms).

    python -m benchmarks.serve_cost --json results/benchmarks/serve_cost.json
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from benchmarks import write_json
from tart.classifier import TartClassifier
from tart.data.datasets import load_dataset
from tart.head.load import load_head
from tart.lm.embedder import Embedder
from tart.serving.cost import QUERY_BATCH, Speeds
from tart.serving.settings import Settings
from tests.local_server import LocalServer


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


def head_tokens(checkpoint: str, labels: list[str], n_queries: int, perms: int, multiclass: str = "auto") -> int:
    """The head's cost of a request, as the service reads it (the classifier's plan)."""
    clf = TartClassifier(head=checkpoint, embedder=None, n_permutations=perms, multiclass=multiclass,
                         random_state=0, query_batch_size=QUERY_BATCH)
    return clf.plan(n_queries, labels).tokens


def heaviest_head_request(settings: Settings, checkpoint: str, max_items: int, n_labels: int = 32):
    """(examples, permutations, texts) with the largest head cost within max_head_tokens, at most
    `max_items` examples and texts together (each costs the embedder tokens too)."""
    best = None
    for k in range(n_labels, min(settings.max_examples, max_items - 1) + 1, n_labels):
        labels = [f"label-{i % n_labels}" for i in range(k)]
        for perms in range(1, settings.max_permutations + 1):
            lo, hi = 0, min(settings.max_texts, max_items - k)  # the most texts within budget (cost grows with them)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if head_tokens(checkpoint, labels, mid, perms) <= settings.max_head_tokens \
                    else (lo, mid - 1)
            if lo:
                tokens = head_tokens(checkpoint, labels, lo, perms)
                if best is None or (tokens, k + lo) > best[0]:
                    best = ((tokens, k + lo), k, perms, lo)
    return best[1:]


def n_tokens(counter: Embedder, texts: list[str]) -> list[int]:
    return [len(ids) for ids in counter.tokenize(texts)]


def words(counter: Embedder, source: list[str], n: int, repeat: int) -> list[str]:
    """n distinct one-token words (another n for each repeat): the shortest texts there are."""
    seen, out = set(), []
    for w in " ".join(source).lower().split():
        w = "".join(ch for ch in w if ch.isalpha())
        if w and w not in seen:
            seen.add(w)
            if n_tokens(counter, [w])[0] == 1:
                out.append(w)
    if len(out) < n * (repeat + 1):
        raise SystemExit(f"only {len(out)} one-token words for {n} texts x {repeat + 1} repeats")
    return out[n * repeat:n * (repeat + 1)]


def fill(counter: Embedder, texts: list[str], source: list[str], budget: int) -> list[str]:
    """`texts` lengthened with words of `source` (each keeps its start) until their embedder cost is
    just under `budget`."""
    pool = " ".join(source).split()
    per_text = max(1, min(budget // len(texts) - counter.n_special_tokens, counter.max_length))
    out = []
    for i, t in enumerate(texts):
        cur, j = t, (i * 37) % len(pool)
        while n_tokens(counter, [f"{cur} {pool[j % len(pool)]}"])[0] <= per_text:
            cur, j = f"{cur} {pool[j % len(pool)]}", j + 1
        out.append(cur)
    total, grown = counter.tokens_read(n_tokens(counter, out)), True
    while grown:  # the remainder: one more word per text, in turn, while the total fits
        grown = False
        for i, t in enumerate(out):
            longer = f"{t} {pool[(i * 37 + len(t)) % len(pool)]}"
            extra = n_tokens(counter, [longer])[0] - n_tokens(counter, [t])[0]
            if n_tokens(counter, [longer])[0] <= counter.max_length and total + extra <= budget and extra > 0:
                out[i], total, grown = longer, total + extra, True
    if counter.tokens_read(n_tokens(counter, out)) > budget:
        raise SystemExit(f"{len(texts)} texts do not fit in {budget} embedder tokens")
    return out


def requests_to_send(settings: Settings, counter: Embedder, checkpoint: str, repeat: int):
    """(name, route, payload); every text is new in each repeat, so none comes from the embedder's cache."""
    tag = f"r{repeat}"
    glosses = load_dataset("wordnet-6way").texts
    fortunes = load_dataset("fortunes-computers-politics").texts
    one_token = 1 + counter.n_special_tokens
    k, perms, n_q = heaviest_head_request(settings, checkpoint, settings.max_embed_tokens // one_token)
    labels = [f"label-{i % 32}" for i in range(k)]

    def classify(texts, labels, options):
        return {"examples": [{"text": t, "label": y} for t, y in zip(texts, labels)], "texts": texts[len(labels):],
                "options": options}

    short = words(counter, glosses + fortunes, k + n_q, repeat)
    largest = classify(fill(counter, short, glosses, settings.max_embed_tokens), labels, {"n_permutations": perms})
    n_par = max(3, settings.max_embed_tokens // (counter.max_length + counter.n_special_tokens))
    paragraphs = fill(counter, [f"{tag} paragraph {i}:" for i in range(n_par)], fortunes, settings.max_embed_tokens)
    k_par = max(2, 2 * n_par // 3)
    embed_heavy = classify(paragraphs, ["ab"[i % 2] for i in range(k_par)], {})
    issue = classify([f"{tag} {g}" for g in glosses[:384]], [f"label-{i % 32}" for i in range(256)],
                     {"n_permutations": 8, "multiclass": "ovo"})
    big_task = {"name": f"big-{tag}", "examples": [{"text": (" ".join(fortunes[i:i + 40]))[:1990] + f" {tag} {i}",
                                                    "label": "ab"[i % 2]} for i in range(256)]}
    return [("largest accepted (both budgets) /classify", "/classify", largest),
            ("embedder-heavy /classify", "/classify", embed_heavy),
            ("issue's 86 s request /classify", "/classify", issue),
            ("256 x 2000-character task /tasks/create", "/tasks/create", big_task)]


def costs(payload: dict, counter: Embedder, checkpoint: str) -> dict:
    texts = [e["text"] for e in payload["examples"]] + payload.get("texts", [])
    out = {"embed_tokens": counter.tokens_read(n_tokens(counter, texts))}
    if "texts" in payload:
        options = payload.get("options", {})
        out["head_tokens"] = head_tokens(checkpoint, [e["label"] for e in payload["examples"]], len(payload["texts"]),
                                         options.get("n_permutations") or Settings().n_permutations,
                                         options.get("multiclass", "auto"))
    return out


def _speeds(server) -> Speeds:
    stats = httpx.post(server.url + "/stats", timeout=60).json()
    return Speeds(embedder=stats["embedder"]["tokens_per_s"], head=stats["service"]["head_tokens_per_s"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--embedder", default=Settings().embedder)
    p.add_argument("--checkpoint", default=Settings().checkpoint)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--embed-threads", type=int, default=0, help="torch threads of the embedder (0: torch's default)")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--max-embed-tokens", type=int, help="try another budget (default: the setting's default)")
    p.add_argument("--max-head-tokens", type=int, help="try another budget (default: the setting's default)")
    args = p.parse_args(argv)
    budget = {k: v for k, v in (("max_embed_tokens", args.max_embed_tokens), ("max_head_tokens", args.max_head_tokens))
              if v is not None}
    settings = Settings(**budget)
    store = Path(tempfile.mkdtemp(prefix="tart-cost-")) / "tasks.sqlite3"
    env = {"TART_CHECKPOINT": args.checkpoint, "TART_EMBEDDER": args.embedder, "TART_STORE_PATH": str(store),
           "TART_CONFIG": "", "TART_EMBED_THREADS": str(args.embed_threads),
           **{f"TART_{k.upper()}": str(v) for k, v in budget.items()}}
    counter = Embedder(args.embedder)  # its tokenizer only
    rounds = [requests_to_send(settings, counter, args.checkpoint, r) for r in range(args.repeats)]
    results = []
    with LocalServer(env) as server:
        speeds = _speeds(server)  # what the server measured at start: its time bound's estimate, checked here
        for i in range(len(rounds[0])):
            for repeat, requests in enumerate(rounds):
                name, route, payload = requests[i]
                cost = costs(payload, counter, args.checkpoint)
                with PeakMemory(server.proc.pid) as mem:
                    t0 = time.perf_counter()
                    r = httpx.post(server.url + route, json=payload, timeout=300)
                    seconds = time.perf_counter() - t0
                body = r.json()
                row = {"request": name, "repeat": repeat, "status": r.status_code, "seconds": seconds,
                       "examples": len(payload["examples"]), "texts": len(payload.get("texts", [])),
                       "labels": len({e["label"] for e in payload["examples"]}), "options": payload.get("options"),
                       **cost, "estimated_seconds": speeds.seconds(cost["embed_tokens"], cost.get("head_tokens", 0)),
                       "error": body.get("error"), "load_average_1min": os.getloadavg()[0], **mem.result()}
                if r.status_code == 200 and "predictions" in body:
                    row["tokens_of_texts"] = sum(p["tokens"] for p in body["predictions"])
                results.append(row)
                print(f"{name} #{repeat}: {r.status_code} in {seconds:.2f} s (estimated "
                      f"{row['estimated_seconds']:.2f} s), +{row['max_extra_mb_one_process']:.0f} MB "
                      f"(one process), {cost}, load {row['load_average_1min']:.1f} {(body.get('error') or '')[:120]}",
                      flush=True)
        stats = httpx.post(server.url + "/stats", timeout=30).json()
    config = load_head(args.checkpoint).config
    out = {"config": {**vars(args), "max_embed_tokens": settings.max_embed_tokens,
                      "max_head_tokens": settings.max_head_tokens, "head_context": config.max_examples,
                      "head_label_slots": config.n_classes if config.multiclass else 0},
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_1_5_15": os.getloadavg()},
           "embedder_dtype": stats["embedder"].get("dtype"),
           "speeds_at_start": {"embedder_tokens_per_s": speeds.embedder, "head_tokens_per_s": speeds.head},
           "results": results}
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
