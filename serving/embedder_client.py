"""The API process's side of the embedder: texts are tokenised here, once, and embedded in the worker.

A request's tokens are its cost (checked before any work: serving/cost.py) and what the embedding
worker (serving/embedding.py) reads, so the API tokenises each text once, with the worker's own
tokenizer, and sends token ids. Small requests go through the worker's adaptive batcher (texts of
concurrent requests share a forward pass); a request of more than half a batch goes in chunks of
`max_batch_size` texts, one after another, straight to the worker: the batcher would gain nothing, and
could refuse a large valid request for its size. A request cancelled meanwhile (its client left, or
timeout_s passed) tells the worker, so that none of its texts still waiting there is run.
"""
from __future__ import annotations

import asyncio
import secrets
from http import HTTPStatus

import aiohttp
import numpy as np
from bentoml.exceptions import BentoMLException

from tart.serving import lifecycle
from tart.serving.embedding import SHUTTING_DOWN


class Unavailable(Exception):
    """503 (with Retry-After): the embedder is overloaded, or the server is stopping."""


class EmbedderClient:
    def __init__(self, worker, embedder: str, max_batch_size: int, max_latency_ms: int):
        from tart.lm.embedder import Embedder

        self.worker = worker  # the `Embedding` service, through bentoml.depends
        self.tokenizer = Embedder(embedder)  # the embedder without its model: tokens only
        self.max_length = self.tokenizer.max_length
        self.max_batch_size, self.max_latency_ms = max_batch_size, max_latency_ms
        self.texts_sent = self.retries = 0
        self._telling: set = set()  # abandon() calls in flight to the worker

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer.tokenize(texts)

    def tokens_read(self, ids: list[list[int]]) -> int:
        """Tokens the worker's model reads for these texts (each cut at max_length, special tokens added)."""
        return self.tokenizer.tokens_read([len(x) for x in ids])

    def truncated(self, ids: list[list[int]]) -> list[int]:
        """Positions of the texts that are cut at max_length."""
        return [i for i, x in enumerate(ids) if len(x) > self.max_length]

    async def embed(self, *parts: list[list[int]]) -> list[np.ndarray]:
        """Each part's vectors (float32, one row per text), all parts embedded as one request."""
        vectors = await self._embed([x for part in parts for x in part])
        bounds = np.cumsum([0] + [len(part) for part in parts])
        return [vectors[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    async def _embed(self, ids: list[list[int]]) -> np.ndarray:
        if not ids:  # nothing to embed (e.g. no label names): the worker is not called
            return np.zeros((0, 0), dtype=np.float32)
        self.texts_sent += len(ids)
        ticket = secrets.randbits(62) + 1
        rows = [[-ticket, *x] for x in ids]  # each row led by its request's ticket, negated (token ids are >= 0)
        n = self.max_batch_size
        try:
            if len(rows) <= n // 2:
                return np.asarray(await self._chunk(rows, large=False), dtype=np.float32)
            parts = [await self._chunk(rows[i:i + n], large=True) for i in range(0, len(rows), n)]
            return np.concatenate([np.asarray(v, dtype=np.float32) for v in parts])
        except asyncio.CancelledError:
            told = asyncio.ensure_future(self.worker.to_async.abandon(ticket))
            self._telling.add(told)  # a reference until it is done: the loop keeps only weak ones
            told.add_done_callback(self._telling.discard)
            raise

    async def _chunk(self, rows: list[list[int]], large: bool):
        call = self.worker.to_async.embed_large if large else self.worker.to_async.embed
        try:
            try:
                return await call(rows)
            except aiohttp.ClientConnectionError:  # a pooled connection closed under us: embedding is idempotent
                self.retries += 1
                return await call(rows)
        except aiohttp.ClientConnectionError as err:
            if lifecycle.stopping():  # the embedding worker has stopped before this request could finish
                raise Unavailable(SHUTTING_DOWN) from err
            raise
        except BentoMLException as err:
            if lifecycle.stopping() and getattr(err, "error_code", None) == HTTPStatus.SERVICE_UNAVAILABLE:
                raise Unavailable(SHUTTING_DOWN) from err  # the embedder refuses work once it closes
            if getattr(err, "error_code", None) in (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS):
                raise Unavailable("the embedder is overloaded (its queue would wait longer than "
                                  f"embed_max_latency_ms={self.max_latency_ms}): retry later") from err
            raise
