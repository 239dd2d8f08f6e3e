"""BentoML services: `Embedding` (the frozen LM, adaptively batched) and `Tart` (the HTTP API).

    bentoml serve tart.serving.service:Tart        (or: tart serve)

`Tart` holds the reasoning head and the task store and calls `Embedding` through `bentoml.depends`, so
the embedder runs in its own worker and can be scaled apart. Texts from concurrent requests share one
embedder forward pass: `Embedding.embed` is batchable (`max_batch_size` texts, `max_latency_ms`);
a request of more than half a batch skips the batcher (`Embedding.embed_large`, in chunks).
The head runs in two lanes with bounded queues and cancellable jobs (`serving.headpool`).
Registered tasks keep their examples' embeddings in SQLite, so classifying by task id embeds only the
new texts, and its fitted `TartClassifier` stays in memory (`serving.store.FittedCache`), so its
requests skip the fit. Every request's cost is checked before any work (`serving.cost`, with the head's
share from `TartClassifier.plan`); the head's work is `predict_proba`, run in a lane. /healthz, /readyz and /metrics are
BentoML's own; /docs.json is BentoML's document completed by `serving.openapi`.
"""
from __future__ import annotations

import asyncio
import functools
import secrets
import time
from http import HTTPStatus
from pathlib import Path

import aiohttp
import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException, ServiceUnavailable
from starlette.responses import JSONResponse

from tart.classifier import TartClassifier
from tart.data.label_names import name_texts
from tart.serving import lifecycle, openapi
from tart.serving.cost import QUERY_BATCH, Speeds, embedder_speed, head_speed, over_budget, refusal
from tart.serving.headpool import Busy, HeadLanes
from tart.serving.middleware import ErrorShape, RequestGate, json_http_errors, logger
from tart.serving.schemas import (ClassifyRequest, ClassifyResponse, Deleted, Example, ModelInfo, Options, Prediction,
                             StatsRequest, TaskClassifyRequest, TaskCreateRequest, TaskDetail, TaskInfo, TaskList,
                             TaskListRequest, TaskRef)
from tart.serving.settings import get_settings
from tart.serving.store import FittedCache, StoreFull, Task, TaskNameTaken, TaskNotFound, TaskStore

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
    # each row led by its request's ticket, negated (`Tart._embed`; token ids are >= 0)
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
                "backend": e.backend,
                "batches": self.n_calls, "texts": self.n_texts, "large_calls": self.n_large_calls,
                "dropped_chunks": self.n_dropped_chunks, "dropped_texts": self.n_dropped_texts,
                "tokens_per_s": self.tokens_per_s,
                "forward_calls": int(e.n_forward_calls), "texts_embedded": int(e.n_texts_embedded)}


class Unavailable(Exception):
    """503 (with Retry-After): the embedder is overloaded, or the server is stopping."""


def _busy(handler):
    """An API method that answers 503 (with Retry-After, from the error middleware) when the embedder is
    overloaded or gone with a stopping server."""
    @functools.wraps(handler)
    async def wrapper(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except Unavailable as err:
            return _error(503, str(err))
    return wrapper


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _name_taken(err: TaskNameTaken) -> JSONResponse:
    # the existing task's id too, so a client re-running its set-up can go on with that task
    return JSONResponse({"error": f"name: {err}", "task_id": err.task_id}, status_code=409)


def _counts(ids: list[list[int]]) -> list[int]:
    return [len(x) for x in ids]


def _info(task: Task, truncated: list[int] | None = None) -> TaskInfo:
    return TaskInfo(id=task.id, name=task.name, labels=task.labels, n_examples=task.n_examples,
                    embedder=task.embedder, created_at=task.created_at, truncated_examples=truncated or [])


# max_concurrency is enforced by RequestGate (429 with Retry-After, one error shape), not by BentoML
@bentoml.service(name="tart", workers=1, traffic={"timeout": S.timeout_s})
class Tart:
    """Few-shot classification: labelled examples (or a registered task) + texts -> labels."""

    embedding = bentoml.depends(Embedding)

    def __init__(self):
        lifecycle.die_with_parent()
        lifecycle.note_stop()  # a request that outlives the embedder then says why (503), not a bare 500
        import torch

        from tart.head.load import load_head
        from tart.lm.embedder import Embedder

        torch.set_num_threads(S.head_threads)
        self.head = load_head(S.checkpoint)
        # the embedder without its model (that runs in `Embedding`): each text is tokenised here, once,
        # to count its cost and truncation, and its ids are what `Embedding` reads
        self.tokens = Embedder(S.embedder)
        self.store = TaskStore(S.store_path, max_tasks=S.max_tasks)
        self.fitted = FittedCache()  # registered tasks' fitted classifiers, by (task id, options)
        # the head runs in lanes of its own (serving/headpool.py): heavy requests cannot take every
        # core, nor make light ones wait; queues are bounded; a gone request's job stops
        self.lanes = HeadLanes.from_settings(S)
        self.model_info = ModelInfo(head=Path(S.checkpoint).name, embedder=S.embedder)
        self.head_tokens_per_s = head_speed(self._classifier(Options()))  # once: the cost budget's time bound
        logger.info("head %s reads %.0f tokens/s on this host (measured once, at start)", S.checkpoint,
                    self.head_tokens_per_s)
        self.speeds = None  # Speeds, once the embedder has said its own (first request)
        self._telling: set = set()  # abandon() calls in flight to the embedder
        self.counts = {"classify_requests": 0, "task_classify_requests": 0, "texts_sent_to_embedder": 0,
                       "examples_from_cache": 0, "examples_reembedded": 0, "embed_retries": 0,
                       "refused_over_budget": 0}

    # ---- helpers ----

    async def _embed_chunk(self, rows: list[list[int]], large: bool):
        call = self.embedding.to_async.embed_large if large else self.embedding.to_async.embed
        try:
            try:
                return await call(rows)
            except aiohttp.ClientConnectionError:  # a pooled connection closed under us: embedding is idempotent
                self.counts["embed_retries"] += 1
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
                                  f"embed_max_latency_ms={S.embed_max_latency_ms}): retry later") from err
            raise

    async def _embed(self, ids: list[list[int]]) -> np.ndarray:
        """Small requests go through the adaptive batcher (texts of concurrent requests share a forward
        pass); a request of more than half a batch goes in chunks of `embed_max_batch_size` texts,
        one after another, straight to the embedder: the batcher would gain nothing, and could refuse
        a large valid request for its size. If the request is cancelled meanwhile (its client left, or
        timeout_s passed), the embedder is told, so that none of its texts still waiting there is run."""
        self.counts["texts_sent_to_embedder"] += len(ids)
        ticket = secrets.randbits(62) + 1
        rows = [[-ticket, *x] for x in ids]
        n = S.embed_max_batch_size
        try:
            if len(rows) <= n // 2:
                return np.asarray(await self._embed_chunk(rows, large=False), dtype=np.float32)
            parts = [await self._embed_chunk(rows[i:i + n], large=True) for i in range(0, len(rows), n)]
            return np.concatenate([np.asarray(v, dtype=np.float32) for v in parts])
        except asyncio.CancelledError:
            told = asyncio.ensure_future(self.embedding.to_async.abandon(ticket))
            self._telling.add(told)  # a reference until it is done: the loop keeps only weak ones
            told.add_done_callback(self._telling.discard)
            raise

    def _options(self, options) -> tuple:
        return (options.n_permutations or S.n_permutations, options.multiclass, options.projection,
                options.label_names, options.transductive)

    def _classifier(self, options) -> TartClassifier:
        perms, multiclass, projection, names, transductive = self._options(options)
        return TartClassifier(head=self.head, embedder=None, n_permutations=perms, multiclass=multiclass,
                              fit_projection_on=projection, random_state=0, query_batch_size=QUERY_BATCH,
                              label_names="auto" if names else None, transductive=transductive)

    def _name_texts(self, labels: list[str], options) -> list[str]:
        """The texts of the labels' names the classifier reads (none when the request turns names off)."""
        return name_texts(labels, "auto", S.embedder) if options.label_names else []

    async def _check_cost(self, embed_counts: list[int], head=None, multiclass: str = "auto"):
        """A 413 response when the request is over budget (`head`: the classifier's plan), else None."""
        if self.speeds is None:
            embedder = await self.embedding.to_async.counters()
            self.speeds = Speeds(embedder=embedder["tokens_per_s"], head=self.head_tokens_per_s)
        message = over_budget(self.tokens.tokens_read(embed_counts), head, S.max_embed_tokens, S.max_head_tokens,
                              multiclass=multiclass, speeds=self.speeds, max_request_s=S.max_request_s)
        if message:
            self.counts["refused_over_budget"] += 1
            return _error(413, message)
        return None

    def _unusable_task(self, labels: list[str]) -> str | None:
        """Why no request with default options could use a task with these labels (one short text would
        be over budget: head tokens, or time), else None: such a task is refused when it is registered."""
        clf = self._classifier(Options())
        head = clf.plan(1, labels)
        found = refusal(self.tokens.tokens_read([1]), head, S.max_embed_tokens, S.max_head_tokens,
                        speeds=self.speeds, max_request_s=S.max_request_s)
        if found is None:
            return None
        return (f"examples: with default options (n_permutations={clf.n_permutations}, multiclass "
                f"'{clf.multiclass}', {len(labels)} examples, {len(set(labels))} labels) a request of one text "
                f"would be refused ({found[0]}): register fewer examples or labels")

    def _truncated(self, counts: list[int]) -> list[int]:
        return [i for i, n in enumerate(counts) if n > self.tokens.max_length]

    async def _answer(self, clf: TartClassifier, queries, query_counts, head_tokens: int, task_id=None,
                      truncated_examples=()):
        try:
            proba = await self.lanes.run(head_tokens, clf.predict_proba, queries)
        except Busy as err:
            return _error(503, str(err))
        except ValueError as err:  # the classifier refused this task (support+queries: built here)
            return _error(422, f"examples: {err}")
        names = clf.classes_.tolist()
        predictions = [Prediction(label=names[int(np.argmax(row))], scores=dict(zip(names, map(float, row))),
                                  tokens=n, truncated=n > self.tokens.max_length)
                       for row, n in zip(np.nan_to_num(proba, nan=0.0), query_counts)]
        return ClassifyResponse(predictions=predictions, model=self.model_info, task_id=task_id,
                                truncated_examples=list(truncated_examples))

    async def _task_fitted(self, task_id: str, options) -> tuple[TartClassifier, list[int]]:
        """A registered task's fitted classifier and truncated examples: from memory, else from the store.
        The store is asked first whether the task still exists (another worker may have deleted it)."""
        if not await asyncio.to_thread(self.store.exists, task_id):
            raise TaskNotFound(task_id)
        key = (task_id, *self._options(options))
        hit = self.fitted.get(key)
        if hit is not None:
            self.counts["examples_from_cache"] += len(hit[0].y_index_)
            return hit
        task = await asyncio.to_thread(self.store.get, task_id)
        ids = self.tokens.tokenize(task.texts)  # once: which examples are cut, and a re-embedding's input
        if task.embedder != S.embedder:  # cached by another embedder: re-embed once, keep the new cache
            vectors = await self._embed(ids + self.tokens.tokenize(task.unlabeled_texts))
            task.embeddings, task.unlabeled_embeddings = vectors[:len(ids)], vectors[len(ids):]
            await asyncio.to_thread(self.store.replace_embeddings, task.id, task.embeddings, S.embedder,
                                    task.unlabeled_embeddings)
            task.embedder = S.embedder
            self.counts["examples_reembedded"] += task.n_examples
        else:
            self.counts["examples_from_cache"] += task.n_examples
        names = self._name_texts(task.example_labels, options)
        name_vectors = await self._embed(self.tokens.tokenize(names)) if names else None
        unlabeled = task.unlabeled_embeddings if len(task.unlabeled_texts) else None
        clf = await asyncio.to_thread(self._classifier(options).fit, task.embeddings, task.example_labels,
                                      unlabeled=unlabeled, name_vectors=name_vectors)
        entry = (clf, self._truncated(_counts(ids)))
        self.fitted.put(key, entry)
        return entry

    # ---- API ----

    @bentoml.api(route="/classify", input_spec=ClassifyRequest)
    @_busy
    async def classify(self, examples: list[Example], texts: list[str], unlabeled: list[str], options) -> ClassifyResponse:
        """Classify `texts` given labelled `examples` and, optionally, `unlabeled` texts of the task (nothing
        is stored)."""
        self.counts["classify_requests"] += 1
        labels = [e.label for e in examples]
        names = self._name_texts(labels, options)  # embedded with the texts, after them
        clf = self._classifier(options)
        unlabeled = [unlabeled[i] for i in clf.unlabeled_sample(len(unlabeled))]
        all_texts = [e.text for e in examples] + list(texts) + names + unlabeled
        ids = self.tokens.tokenize(all_texts)
        counts = _counts(ids)
        head = clf.plan(len(texts), labels, n_unlabeled=len(unlabeled))
        refused = await self._check_cost(counts, head, options.multiclass)
        if refused:
            return refused
        vectors = await self._embed(ids)
        k, n, c = len(examples), len(texts), len(names)
        try:  # no head forward yet: projection and contexts only
            await asyncio.to_thread(clf.fit, vectors[:k], labels, unlabeled=vectors[k + n + c:] if unlabeled else None,
                                    name_vectors=vectors[k + n:k + n + c] if names else None)
        except ValueError as err:
            return _error(422, f"examples: {err}")
        return await self._answer(clf, vectors[k:k + n], counts[k:k + n], head.tokens,
                                  truncated_examples=self._truncated(counts[:k]))

    @bentoml.api(route="/tasks/create", input_spec=TaskCreateRequest)
    @_busy
    async def create_task(self, name: str, examples: list[Example], unlabeled: list[str]) -> TaskInfo:
        """Register a task: its examples (and a sample of its unlabelled texts) are embedded once and kept.
        Returns the task's id."""
        texts, labels = [e.text for e in examples], [e.label for e in examples]
        ids = self.tokens.tokenize(texts)
        counts = _counts(ids)
        clf = self._classifier(Options())  # what depends only on the task is prepared for the default options
        unlabeled = [unlabeled[i] for i in clf.unlabeled_sample(len(unlabeled))]
        u_ids = self.tokens.tokenize(unlabeled)
        refused = await self._check_cost(counts + _counts(u_ids))
        if refused:
            return refused
        unusable = self._unusable_task(labels)
        if unusable:
            self.counts["refused_over_budget"] += 1
            return _error(413, unusable)
        taken = await asyncio.to_thread(self.store.id_of, name)  # say so before embedding anything
        if taken:
            return _name_taken(TaskNameTaken(name, taken))
        names = self._name_texts(labels, Options())
        vectors = await self._embed(ids + self.tokens.tokenize(names) + u_ids)
        k, c = len(texts), len(names)
        vectors, name_vectors, U = vectors[:k], vectors[k:k + c], vectors[k + c:]
        try:
            task = await asyncio.to_thread(self.store.create, name, texts, labels, vectors, S.embedder, unlabeled, U)
        except TaskNameTaken as err:
            return _name_taken(err)
        except StoreFull as err:
            return _error(409, str(err))
        await asyncio.to_thread(clf.fit, vectors, labels, unlabeled=U if unlabeled else None, name_vectors=name_vectors)
        truncated = self._truncated(counts)
        self.fitted.put((task.id, *self._options(Options())), (clf, truncated))
        return _info(task, truncated)

    @bentoml.api(route="/tasks/list", input_spec=TaskListRequest)
    async def list_tasks(self, limit: int = 100, offset: int = 0) -> TaskList:
        """Registered tasks, oldest first (without their examples)."""
        tasks, total = await asyncio.to_thread(self.store.list, limit, offset)
        return TaskList(tasks=[_info(t) for t in tasks], total=total)

    @bentoml.api(route="/tasks/get", input_spec=TaskRef)
    async def get_task(self, task_id: str) -> TaskDetail:
        """One task with its examples."""
        try:
            task = await asyncio.to_thread(self.store.get, task_id)
        except TaskNotFound:
            return _error(404, f"task_id: no task with id {task_id!r}")
        examples = [Example(text=t, label=y) for t, y in zip(task.texts, task.example_labels)]
        truncated = self._truncated(_counts(self.tokens.tokenize(task.texts)))
        return TaskDetail(**_info(task, truncated).model_dump(), examples=examples)

    @bentoml.api(route="/tasks/delete", input_spec=TaskRef)
    async def delete_task(self, task_id: str) -> Deleted:
        """Delete a task and its cached embeddings."""
        try:
            await asyncio.to_thread(self.store.delete, task_id)
        except TaskNotFound:
            return _error(404, f"task_id: no task with id {task_id!r}")
        finally:
            self.fitted.drop_task(task_id)
        return Deleted(id=task_id, deleted=True)

    @bentoml.api(route="/tasks/classify", input_spec=TaskClassifyRequest)
    @_busy
    async def classify_task(self, task_id: str, texts: list[str], options) -> ClassifyResponse:
        """Classify `texts` with a registered task: only the texts are embedded."""
        self.counts["task_classify_requests"] += 1
        ids = self.tokens.tokenize(texts)
        counts = _counts(ids)
        try:
            clf, truncated = await self._task_fitted(task_id, options)
        except TaskNotFound:
            return _error(404, f"task_id: no task with id {task_id!r}")
        head = clf.plan(len(texts))
        refused = await self._check_cost(counts, head, options.multiclass)
        if refused:
            return refused
        queries = await self._embed(ids)
        return await self._answer(clf, queries, counts, head.tokens, task_id=task_id, truncated_examples=truncated)

    def __is_ready__(self) -> bool:
        """BentoML's /readyz asks this (and the embedder's): unready while a head job is stuck."""
        return self.lanes.oldest_running_s() < S.stuck_after_s

    @bentoml.api(route="/stats", input_spec=StatsRequest)
    async def stats(self) -> dict:
        """Counters: this service's requests and cache use, and the embedder's batches and forwards."""
        return {"service": {**self.counts, "fitted_cache_hits": self.fitted.hits,
                            "fitted_cache_misses": self.fitted.misses, **self.lanes.counters(),
                            "head_oldest_running_s": self.lanes.oldest_running_s(),
                            "head_tokens_per_s": self.head_tokens_per_s},
                "embedder": await self.embedding.to_async.counters(), "model": self.model_info.model_dump()}


def _requests() -> dict:
    """Each API route's request model, as its decorator above declares it (the one list of routes)."""
    return {api.route: api.input_spec for api in Tart.apis.values()}


def _openapi() -> dict:
    return openapi.build(Tart.openapi_spec.asdict(), _requests())


json_http_errors()  # also what the HTTP server answers a request it cannot parse
Tart.add_asgi_middleware(ErrorShape)  # outermost: every error, the gate's included, gets one shape
Tart.add_asgi_middleware(RequestGate, max_body_bytes=S.max_body_bytes, api_keys=S.keys, openapi=_openapi,
                         max_concurrency=S.max_concurrency, body_timeout_s=S.body_timeout_s, requests=_requests())
