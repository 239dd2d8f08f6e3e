"""BentoML services: `Embedding` (the frozen LM, adaptively batched) and `Tart` (the HTTP API).

    bentoml serve tart.serving.service:Tart        (or: tart serve)

`Tart` holds the reasoning head and the task store and calls `Embedding` through `bentoml.depends`, so
the embedder runs in its own worker and can be scaled apart. Texts from concurrent requests share one
embedder forward pass: `Embedding.embed` is batchable (`max_batch_size` texts, `max_latency_ms`).
Registered tasks keep their examples' embeddings in SQLite, so classifying by task id embeds only the
new texts. /healthz, /readyz, /metrics and /docs.json are BentoML's own.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import bentoml
import numpy as np
from starlette.responses import JSONResponse

from tart.serving import predict
from tart.serving.middleware import RequestGate, ReadableErrors
from tart.serving.schemas import (ClassifyRequest, ClassifyResponse, Deleted, Example, ModelInfo,
                             TaskClassifyRequest, TaskCreateRequest, TaskDetail, TaskInfo, TaskList,
                             TaskListRequest, TaskRef)
from tart.serving.settings import get_settings
from tart.serving.store import StoreFull, Task, TaskNameTaken, TaskNotFound, TaskStore

S = get_settings()


# BentoML's client to a dependency closes its connection pool every `max_requests` calls (default 100)
# even while other calls are in flight on it, which fails those calls: keep the pool for the process.
@bentoml.service(name="tart-embedding", workers=1, traffic={"timeout": S.timeout_s},
                 runner_connection={"max_requests": 2**62, "max_age": 1e12})
class Embedding:
    """The frozen language model. Called only by `Tart`, never from outside."""

    def __init__(self):
        import torch

        if S.embed_threads:
            torch.set_num_threads(S.embed_threads)
        from tart.embeddings import load_embedder

        self.embedder = load_embedder(S.embedder, progress=False)
        self.embedder.embed(["warm-up"])  # load now: a bad model fails the start, not a request
        self.n_calls = 0  # adaptive batches this service ran (each one `embed` call below)
        self.n_texts = 0

    @bentoml.api(batchable=True, max_batch_size=S.embed_max_batch_size, max_latency_ms=S.embed_max_latency_ms)
    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.embedder.embed(texts)
        self.n_calls += 1
        self.n_texts += len(texts)
        return vectors

    @bentoml.api
    def counters(self) -> dict:
        e = self.embedder
        return {"name": S.embedder, "dim": int(e.dim), "batches": self.n_calls, "texts": self.n_texts,
                "forward_calls": int(e.n_forward_calls), "texts_embedded": int(e.n_texts_embedded)}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _info(task: Task) -> TaskInfo:
    return TaskInfo(id=task.id, name=task.name, labels=task.labels, n_examples=task.n_examples,
                    embedder=task.embedder, created_at=task.created_at)


@bentoml.service(name="tart", workers=1,
                 traffic={"timeout": S.timeout_s, "max_concurrency": S.max_concurrency})
class Tart:
    """Few-shot classification: labelled examples (or a registered task) + texts -> labels."""

    embedding = bentoml.depends(Embedding)

    def __init__(self):
        import torch

        from tart.checkpoint_io import load_head

        torch.set_num_threads(S.head_threads)
        self.head = load_head(S.checkpoint)
        self.store = TaskStore(S.store_path, max_tasks=S.max_tasks)
        # the head runs in a small pool of its own: a few large requests cannot take every core and
        # all the memory at once; the others wait their turn (up to timeout_s)
        self.head_pool = ThreadPoolExecutor(max_workers=S.head_concurrency, thread_name_prefix="tart-head")
        self.model_info = ModelInfo(head=Path(S.checkpoint).name, embedder=S.embedder)
        self.counts = {"classify_requests": 0, "task_classify_requests": 0, "texts_sent_to_embedder": 0,
                       "examples_from_cache": 0, "examples_reembedded": 0, "embed_retries": 0}

    # ---- helpers ----

    async def _embed(self, texts: list[str]) -> np.ndarray:
        self.counts["texts_sent_to_embedder"] += len(texts)
        try:
            vectors = await self.embedding.to_async.embed(texts)
        except aiohttp.ClientConnectionError:  # a pooled connection closed under us: embedding is idempotent
            self.counts["embed_retries"] += 1
            vectors = await self.embedding.to_async.embed(texts)
        return np.asarray(vectors, dtype=np.float32)

    def _fit(self, support: np.ndarray, labels: list[str], options):
        return predict.fit(self.head, support, labels, options.n_permutations or S.n_permutations,
                           options.multiclass, options.projection)

    async def _answer(self, support, labels, queries, options, task_id=None, fitted=None):
        def run():
            return predict.predict(fitted or self._fit(support, labels, options), queries)

        try:
            predictions = await asyncio.get_running_loop().run_in_executor(self.head_pool, run)
        except ValueError as err:  # the classifier refused this support set
            return _error(422, f"examples: {err}")
        return ClassifyResponse(predictions=predictions, model=self.model_info, task_id=task_id)

    async def _task_with_embeddings(self, task_id: str) -> Task:
        task = await asyncio.to_thread(self.store.get, task_id)
        if task.embedder != S.embedder:  # cached by another embedder: re-embed once, keep the new cache
            task.embeddings = await self._embed(task.texts)
            await asyncio.to_thread(self.store.replace_embeddings, task.id, task.embeddings, S.embedder)
            task.embedder = S.embedder
            self.counts["examples_reembedded"] += task.n_examples
        else:
            self.counts["examples_from_cache"] += task.n_examples
        return task

    # ---- API ----

    @bentoml.api(route="/classify", input_spec=ClassifyRequest)
    async def classify(self, examples: list[Example], texts: list[str], options) -> ClassifyResponse:
        """Classify `texts` given labelled `examples` (nothing is stored)."""
        self.counts["classify_requests"] += 1
        vectors = await self._embed([e.text for e in examples] + list(texts))
        k = len(examples)
        return await self._answer(vectors[:k], [e.label for e in examples], vectors[k:], options)

    @bentoml.api(route="/tasks/create", input_spec=TaskCreateRequest)
    async def create_task(self, name: str, examples: list[Example]) -> TaskInfo:
        """Register a task: its examples are embedded once and kept. Returns the task's id."""
        if await asyncio.to_thread(self.store.name_taken, name):  # say so before embedding anything
            return _error(409, f"name: {TaskNameTaken.message(name)}")
        texts = [e.text for e in examples]
        vectors = await self._embed(texts)
        try:
            task = await asyncio.to_thread(self.store.create, name, texts, [e.label for e in examples],
                                           vectors, S.embedder)
        except (TaskNameTaken, StoreFull) as err:
            return _error(409, f"name: {err}" if isinstance(err, TaskNameTaken) else str(err))
        return _info(task)

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
        return TaskDetail(**_info(task).model_dump(), examples=examples)

    @bentoml.api(route="/tasks/delete", input_spec=TaskRef)
    async def delete_task(self, task_id: str) -> Deleted:
        """Delete a task and its cached embeddings."""
        try:
            await asyncio.to_thread(self.store.delete, task_id)
        except TaskNotFound:
            return _error(404, f"task_id: no task with id {task_id!r}")
        return Deleted(id=task_id, deleted=True)

    @bentoml.api(route="/tasks/classify", input_spec=TaskClassifyRequest)
    async def classify_task(self, task_id: str, texts: list[str], options) -> ClassifyResponse:
        """Classify `texts` with a registered task: only the texts are embedded."""
        self.counts["task_classify_requests"] += 1
        try:
            task = await self._task_with_embeddings(task_id)
        except TaskNotFound:
            return _error(404, f"task_id: no task with id {task_id!r}")
        queries = await self._embed(list(texts))
        return await self._answer(task.embeddings, task.example_labels, queries, options, task_id=task.id)

    @bentoml.api(route="/stats")
    async def stats(self) -> dict:
        """Counters: this service's requests and cache use, and the embedder's batches and forwards."""
        return {"service": dict(self.counts), "embedder": await self.embedding.to_async.counters(),
                "model": self.model_info.model_dump()}


Tart.add_asgi_middleware(RequestGate, max_body_bytes=S.max_body_bytes)  # outermost of the two
Tart.add_asgi_middleware(ReadableErrors)
