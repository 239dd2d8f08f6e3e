"""The embedding worker: the frozen language model as a BentoML service of its own, adaptively batched.

`Tart` (serving/service.py) calls it through `bentoml.depends`, so the embedder runs in its own worker and
can be scaled apart. Texts from concurrent requests share one forward pass: `embed` is batchable
(`max_batch_size` texts, `max_latency_ms`); a request of more than half a batch skips the batcher
(`embed_large`, in chunks, one forward at a time). Texts arrive as token ids, tokenised once by the API
process; a request the API has abandoned is not embedded (`abandon`).
"""
from __future__ import annotations

import asyncio
import time

import bentoml
import numpy as np
from bentoml.exceptions import ServiceUnavailable

from tart.serving import lifecycle
from tart.serving.cost import embedder_speed
from tart.serving.errors import logger
from tart.serving.settings import get_settings

S = get_settings()
SHUTTING_DOWN = "the server is shutting down: retry the request on a running server"


# BentoML's client to a dependency closes its connection pool every `max_requests` calls (default 100)
# even while other calls are in flight on it, which fails those calls: keep the pool for the process.
@bentoml.service(name="tart-embedding", workers=1, traffic={"timeout": S.timeout_s},
                 runner_connection={"max_requests": 2**62, "max_age": 1e12})
class Embedding:
    """The frozen language model. Called only by `Tart`, never from outside."""

    def __init__(self):
        lifecycle.die_with_parent()
        import threading

        import torch

        if S.embed_threads:
            torch.set_num_threads(S.embed_threads)
        from tart.lm.embedder import load_embedder

        self.embedder = load_embedder(S.embedder, progress=False, dtype=S.embed_dtype, backend=S.embed_backend)
        self.embedder.embed(["warm-up"])  # load now: a bad model fails the start, not a request
        self.tokens_per_s = embedder_speed(self.embedder)  # once: the cost budget's time bound (serving/cost.py)
        logger.info("embedder %s reads %.0f tokens/s on this host (measured once, at start)", S.embedder,
                    self.tokens_per_s)
        self.n_calls = 0  # adaptive batches this service ran (each one `embed` call below)
        self.n_texts = 0
        self.busy_since = None  # when the running forward started
        self.n_large_calls = 0  # embed_large calls (chunks of large requests)
        self.n_dropped_chunks = 0  # large chunks whose request was gone before their turn: not run
        self.n_dropped_texts = 0  # texts of gone requests not embedded (in batches and large chunks)
        self.abandoned: dict[int, float] = {}  # tickets of requests the API has cancelled -> when
        self._forward_lock = threading.Lock()  # one forward at a time: batches and large chunks alike
        self._large_turn = asyncio.Lock()  # large chunks wait here, in arrival order
        # on a clean stop, serve the API's requests in flight until idle a moment (serving/lifecycle.py)
        self._calls, self._last_call = 0, time.monotonic()
        self._calls_lock = threading.Lock()
        # at most until 1 s before the API cancels its requests (shutdown_timeout_s), then refuse what still
        # waits: those requests answer 503 "shutting down" themselves, before being cancelled
        self.closing = False
        lifecycle.linger_on_stop(self._idle_for, idle_s=1.0, max_s=max(0.0, S.shutdown_timeout_s - 1.0),
                                 then=self._close)

    def _close(self) -> None:
        self.closing = True

    def _idle_for(self) -> float:
        with self._calls_lock:
            return 0.0 if self._calls else time.monotonic() - self._last_call

    def _call(self, delta: int) -> None:
        with self._calls_lock:
            self._calls += delta
            self._last_call = time.monotonic()

    def _forward(self, rows: list[list[int]]) -> np.ndarray:
        """Embed rows of `[-ticket, *token ids]`, but not those of an abandoned request (their rows stay
        zero: no one reads them). Checked once the forward lock is taken, so work queued behind a running
        forward is dropped; an abandoned request's running forward is its last."""
        with self._forward_lock:
            if self.closing:  # refused, not zeros: a request still waiting for these rows would read them
                raise ServiceUnavailable(SHUTTING_DOWN)
            keep = [i for i, row in enumerate(rows) if -row[0] not in self.abandoned]
            vectors = np.zeros((len(rows), int(self.embedder.dim)), dtype=np.float32)
            if keep:
                self.busy_since = time.monotonic()
                try:
                    vectors[keep] = self.embedder.embed_ids([rows[i][1:] for i in keep])
                finally:
                    self.busy_since = None
        self.n_calls += 1
        self.n_texts += len(keep)
        self.n_dropped_texts += len(rows) - len(keep)
        return vectors

    # texts arrive as token ids (`Tart` tokenised them to count their cost, with this embedder's tokenizer),
    # each row led by its request's ticket, negated (serving/embedder_client.py; token ids are >= 0)
    @bentoml.api(batchable=True, max_batch_size=S.embed_max_batch_size, max_latency_ms=S.embed_max_latency_ms)
    def embed(self, rows: list[list[int]]) -> np.ndarray:
        self._call(+1)
        try:
            return self._forward(rows)
        finally:
            self._call(-1)

    @bentoml.api
    async def embed_large(self, rows: list[list[int]]) -> np.ndarray:
        """One large request's chunk, outside the adaptive batcher: it fills a batch on its own, and
        the batcher would refuse it (503) whenever its estimated time passes embed_max_latency_ms.
        Chunks take turns, one forward at a time (batches too)."""
        self._call(+1)
        try:
            return await self._embed_large(rows)
        finally:
            self._call(-1)

    async def _embed_large(self, rows: list[list[int]]) -> np.ndarray:
        async with self._large_turn:
            if self.closing:
                raise ServiceUnavailable(SHUTTING_DOWN)
            if rows and -rows[0][0] in self.abandoned:  # one request's chunk: gone before its turn
                self.n_dropped_chunks += 1
                self.n_dropped_texts += len(rows)
                return np.zeros((len(rows), int(self.embedder.dim)), dtype=np.float32)
            self.n_large_calls += 1
            return await asyncio.to_thread(self._forward, rows)

    @bentoml.api
    async def abandon(self, ticket: int) -> None:
        """The API cancelled this ticket's request: its texts still waiting here are not embedded."""
        now = time.monotonic()
        self.abandoned[ticket] = now
        for old in [t for t, when in self.abandoned.items() if now - when > 2 * S.timeout_s]:
            del self.abandoned[old]  # its request ended long ago (timeout_s bounds every request)

    def __is_ready__(self) -> bool:
        """Unready while one forward pass runs longer than stuck_after_s (the API's /readyz asks too)."""
        busy = self.busy_since
        return busy is None or time.monotonic() - busy < S.stuck_after_s

    @bentoml.api
    def counters(self) -> dict:
        e = self.embedder
        return {"name": S.embedder, "dim": int(e.dim), "dtype": str(e.model.dtype).replace("torch.", ""),
                "backend": e.backend, "loaded": e.loaded, "backend_calls": dict(e.backend_calls),  # auto: which ran
                "batches": self.n_calls, "texts": self.n_texts, "large_calls": self.n_large_calls,
                "dropped_chunks": self.n_dropped_chunks, "dropped_texts": self.n_dropped_texts,
                "tokens_per_s": self.tokens_per_s,
                "forward_calls": int(e.n_forward_calls), "texts_embedded": int(e.n_texts_embedded)}
