"""The HTTP API (BentoML): few-shot classification by labelled examples or by a registered task.

    bentoml serve tart.serving.service:Tart        (or: tart serve)

An API method reads its task, gets a fitted `TartClassifier` and asks the library for the two things it
needs: the request's cost (`plan`, with the embedder's tokens), checked before any work
(serving/cost.py), and the answer (`iter_proba`, run in a head lane: serving/headpool.py). Texts are
embedded by the embedding worker (serving/embedding.py) through `EmbedderClient`, which tokenises each
text once, here. Registered tasks keep their examples' embeddings in SQLite (serving/store.py) and their
fitted classifiers in memory (serving/fitted_cache.py), so a request by task id embeds only its texts
and skips the fit. Requests pass the gate (serving/gate.py) first; every error has one shape
(serving/errors.py). /healthz, /readyz and /metrics are BentoML's own; /docs.json is BentoML's document
completed by serving/openapi.py.
"""
from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import bentoml
import numpy as np
from starlette.responses import JSONResponse

from tart.classifier import TartClassifier
from tart.data.label_names import name_texts
from tart.serving import lifecycle, openapi
from tart.serving.cost import QUERY_BATCH, Speeds, head_speed, over_budget, refusal
from tart.serving.embedder_client import EmbedderClient, Unavailable
from tart.serving.embedding import Embedding
from tart.serving.errors import ErrorShape, json_http_errors, logger
from tart.serving.fitted_cache import FittedCache
from tart.serving.gate import RequestGate
from tart.serving.headpool import Busy, HeadLanes
from tart.serving.schemas import (ClassifyRequest, ClassifyResponse, Deleted, Example, ModelInfo, Options, Prediction,
                                  StatsRequest, TaskClassifyRequest, TaskCreateRequest, TaskDetail, TaskInfo, TaskList,
                                  TaskListRequest, TaskRef)
from tart.serving.settings import get_settings
from tart.serving.store import StoreFull, Task, TaskNameTaken, TaskNotFound, TaskStore

S = get_settings()


class Refused(Exception):
    """An answer other than the one asked for: `status` and a message (and a taken name's task id)."""

    def __init__(self, status: int, message: str, task_id: str | None = None):
        super().__init__(message)
        self.status, self.task_id = status, task_id


def _answers(handler):
    """An API method whose refusals (`Refused`, a missing task, a full lane or a gone embedder) become
    error responses: `{"error": ...}`, with Retry-After on 503 from the error middleware."""
    @functools.wraps(handler)
    async def wrapper(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except Refused as err:
            extra = {"task_id": err.task_id} if err.task_id else {}  # a client re-running its set-up goes on
            return JSONResponse({"error": str(err), **extra}, status_code=err.status)
        except TaskNotFound as err:
            return JSONResponse({"error": f"task_id: no task with id {err.args[0]!r}"}, status_code=404)
        except (Unavailable, Busy) as err:
            return JSONResponse({"error": str(err)}, status_code=503)
    return wrapper


def _info(task: Task, truncated: list[int] | None = None) -> TaskInfo:
    return TaskInfo(id=task.id, name=task.name, labels=task.labels, n_examples=task.n_examples,
                    embedder=task.embedder, created_at=task.created_at, truncated_examples=truncated or [])


def _or_none(vectors: np.ndarray | None) -> np.ndarray | None:
    return vectors if vectors is not None and len(vectors) else None


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

        torch.set_num_threads(S.head_threads)
        self.head = load_head(S.checkpoint)
        self.embedder = EmbedderClient(self.embedding, S.embedder, S.embed_max_batch_size, S.embed_max_latency_ms)
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
        self.counts = {"classify_requests": 0, "task_classify_requests": 0, "examples_from_cache": 0,
                       "examples_reembedded": 0, "refused_over_budget": 0}

    # ---- the steps an API method takes ----

    def _classifier(self, options) -> TartClassifier:
        return TartClassifier(head=self.head, embedder=None, n_permutations=options.n_permutations or S.n_permutations,
                              multiclass=options.multiclass, fit_projection_on=options.projection, random_state=0,
                              query_batch_size=QUERY_BATCH, label_names="auto" if options.label_names else None,
                              transductive=options.transductive)

    def _names(self, labels: list[str], options) -> list[list[int]]:
        """The token ids of the labels' names the classifier reads (none when the request turns names off)."""
        return self.embedder.tokenize(name_texts(labels, "auto", S.embedder) if options.label_names else [])

    async def _check_cost(self, ids: list[list[int]], head=None, multiclass: str = "auto") -> None:
        """Refused (413) when the request is over budget (`head`: the classifier's plan)."""
        if self.speeds is None:
            embedder = await self.embedding.to_async.counters()
            self.speeds = Speeds(embedder=embedder["tokens_per_s"], head=self.head_tokens_per_s)
        message = over_budget(self.embedder.tokens_read(ids), head, S.max_embed_tokens, S.max_head_tokens,
                              multiclass=multiclass, speeds=self.speeds, max_request_s=S.max_request_s)
        if message:
            self.counts["refused_over_budget"] += 1
            raise Refused(413, message)

    def _check_usable(self, clf: TartClassifier, labels: list[str]) -> None:
        """Refused (413) when no request with `clf`'s options (the defaults) could use a task with these labels
        (one short text would be over budget: head tokens, or time): such a task is refused when registered."""
        found = refusal(self.embedder.tokens_read([[0]]), clf.plan(1, labels), S.max_embed_tokens,
                        S.max_head_tokens, speeds=self.speeds, max_request_s=S.max_request_s)
        if found is not None:
            self.counts["refused_over_budget"] += 1
            raise Refused(413, f"examples: with default options (n_permutations={clf.n_permutations}, multiclass "
                               f"'{clf.multiclass}', {len(labels)} examples, {len(set(labels))} labels) a request of "
                               f"one text would be refused ({found[0]}): register fewer examples or labels")

    async def _fit(self, clf: TartClassifier, X, y, unlabeled, names) -> TartClassifier:
        try:  # no head forward yet: projection and contexts only
            return await asyncio.to_thread(clf.fit, X, y, unlabeled=_or_none(unlabeled), name_vectors=_or_none(names))
        except ValueError as err:  # the classifier refused this task
            raise Refused(422, f"examples: {err}") from None

    async def _answer(self, clf: TartClassifier, queries, query_ids, head_tokens: int, task_id=None,
                      truncated_examples=()) -> ClassifyResponse:
        try:
            proba = np.concatenate(await self.lanes.run(head_tokens, clf.iter_proba, queries))
        except ValueError as err:  # the classifier refused this task (support+queries: built here)
            raise Refused(422, f"examples: {err}") from None
        names = clf.classes_.tolist()
        predictions = [Prediction(label=names[int(np.argmax(row))], scores=dict(zip(names, map(float, row))),
                                  tokens=len(ids), truncated=len(ids) > self.embedder.max_length)
                       for row, ids in zip(np.nan_to_num(proba, nan=0.0), query_ids)]
        return ClassifyResponse(predictions=predictions, model=self.model_info, task_id=task_id,
                                truncated_examples=list(truncated_examples))

    def _options_key(self, task_id: str, options) -> tuple:
        return (task_id, options.n_permutations or S.n_permutations, options.multiclass, options.projection,
                options.label_names, options.transductive)

    async def _task_classifier(self, task_id: str, options) -> tuple[TartClassifier, list[int]]:
        """A registered task's fitted classifier and truncated examples: from memory, else from the store.
        The store is asked first whether the task still exists (another worker may have deleted it)."""
        if not await asyncio.to_thread(self.store.exists, task_id):
            raise TaskNotFound(task_id)
        key = self._options_key(task_id, options)
        hit = self.fitted.get(key)
        if hit is not None:
            self.counts["examples_from_cache"] += len(hit[0].y_index_)
            return hit
        task = await asyncio.to_thread(self.store.get, task_id)
        ids = self.embedder.tokenize(task.texts)  # once: which examples are cut, and a re-embedding's input
        if task.embedder != S.embedder:  # cached by another embedder: re-embed once, keep the new cache
            task.embeddings, task.unlabeled_embeddings = await self.embedder.embed(
                ids, self.embedder.tokenize(task.unlabeled_texts))
            await asyncio.to_thread(self.store.replace_embeddings, task.id, task.embeddings, S.embedder,
                                    task.unlabeled_embeddings)
            self.counts["examples_reembedded"] += task.n_examples
        else:
            self.counts["examples_from_cache"] += task.n_examples
        (names,) = await self.embedder.embed(self._names(task.example_labels, options))
        clf = await self._fit(self._classifier(options), task.embeddings, task.example_labels,
                              task.unlabeled_embeddings, names)
        entry = (clf, self.embedder.truncated(ids))
        self.fitted.put(key, entry)
        return entry

    # ---- API ----

    @bentoml.api(route="/classify", input_spec=ClassifyRequest)
    @_answers
    async def classify(self, examples: list[Example], texts: list[str], unlabeled: list[str], options) -> ClassifyResponse:
        """Classify `texts` given labelled `examples` and, optionally, `unlabeled` texts of the task (nothing
        is stored)."""
        self.counts["classify_requests"] += 1
        clf, labels = self._classifier(options), [e.label for e in examples]
        unlabeled = [unlabeled[i] for i in clf.unlabeled_sample(len(unlabeled))]
        ids = [self.embedder.tokenize([e.text for e in examples]), self.embedder.tokenize(texts),
               self._names(labels, options), self.embedder.tokenize(unlabeled)]
        head = clf.plan(len(texts), labels, n_unlabeled=len(unlabeled))
        await self._check_cost(sum(ids, []), head, options.multiclass)
        self.lanes.lane(head.tokens).check()  # a full lane refuses before any embedding
        X, Q, names, U = await self.embedder.embed(*ids)
        await self._fit(clf, X, labels, U, names)
        return await self._answer(clf, Q, ids[1], head.tokens, truncated_examples=self.embedder.truncated(ids[0]))

    @bentoml.api(route="/tasks/create", input_spec=TaskCreateRequest)
    @_answers
    async def create_task(self, name: str, examples: list[Example], unlabeled: list[str]) -> TaskInfo:
        """Register a task: its examples (and a sample of its unlabelled texts) are embedded once and kept.
        Returns the task's id."""
        texts, labels = [e.text for e in examples], [e.label for e in examples]
        clf = self._classifier(Options())  # what depends only on the task is prepared for the default options
        unlabeled = [unlabeled[i] for i in clf.unlabeled_sample(len(unlabeled))]
        ids, u_ids = self.embedder.tokenize(texts), self.embedder.tokenize(unlabeled)
        await self._check_cost(ids + u_ids)
        self._check_usable(clf, labels)
        taken = await asyncio.to_thread(self.store.id_of, name)  # say so before embedding anything
        if taken:
            raise Refused(409, f"name: {TaskNameTaken(name, taken)}", task_id=taken)
        X, names, U = await self.embedder.embed(ids, self._names(labels, Options()), u_ids)
        try:
            task = await asyncio.to_thread(self.store.create, name, texts, labels, X, S.embedder, unlabeled, U)
        except TaskNameTaken as err:
            raise Refused(409, f"name: {err}", task_id=err.task_id) from None
        except StoreFull as err:
            raise Refused(409, str(err)) from None
        await self._fit(clf, X, labels, U, names)
        truncated = self.embedder.truncated(ids)
        self.fitted.put(self._options_key(task.id, Options()), (clf, truncated))
        return _info(task, truncated)

    @bentoml.api(route="/tasks/list", input_spec=TaskListRequest)
    async def list_tasks(self, limit: int = 100, offset: int = 0) -> TaskList:
        """Registered tasks, oldest first (without their examples)."""
        tasks, total = await asyncio.to_thread(self.store.list, limit, offset)
        return TaskList(tasks=[_info(t) for t in tasks], total=total)

    @bentoml.api(route="/tasks/get", input_spec=TaskRef)
    @_answers
    async def get_task(self, task_id: str) -> TaskDetail:
        """One task with its examples."""
        task = await asyncio.to_thread(self.store.get, task_id)
        examples = [Example(text=t, label=y) for t, y in zip(task.texts, task.example_labels)]
        truncated = self.embedder.truncated(self.embedder.tokenize(task.texts))
        return TaskDetail(**_info(task, truncated).model_dump(), examples=examples)

    @bentoml.api(route="/tasks/delete", input_spec=TaskRef)
    @_answers
    async def delete_task(self, task_id: str) -> Deleted:
        """Delete a task and its cached embeddings."""
        try:
            await asyncio.to_thread(self.store.delete, task_id)
        finally:
            self.fitted.drop_task(task_id)
        return Deleted(id=task_id, deleted=True)

    @bentoml.api(route="/tasks/classify", input_spec=TaskClassifyRequest)
    @_answers
    async def classify_task(self, task_id: str, texts: list[str], options) -> ClassifyResponse:
        """Classify `texts` with a registered task: only the texts are embedded."""
        self.counts["task_classify_requests"] += 1
        ids = self.embedder.tokenize(texts)
        clf, truncated = await self._task_classifier(task_id, options)
        head = clf.plan(len(texts))
        await self._check_cost(ids, head, options.multiclass)
        self.lanes.lane(head.tokens).check()  # a full lane refuses before any embedding
        (Q,) = await self.embedder.embed(ids)
        return await self._answer(clf, Q, ids, head.tokens, task_id=task_id, truncated_examples=truncated)

    def __is_ready__(self) -> bool:
        """BentoML's /readyz asks this (and the embedder's): unready while a head job is stuck."""
        return self.lanes.oldest_running_s() < S.stuck_after_s

    @bentoml.api(route="/stats", input_spec=StatsRequest)
    async def stats(self) -> dict:
        """Counters: this service's requests and cache use, and the embedder's batches and forwards."""
        return {"service": {**self.counts, "texts_sent_to_embedder": self.embedder.texts_sent,
                            "embed_retries": self.embedder.retries, "fitted_cache_hits": self.fitted.hits,
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
