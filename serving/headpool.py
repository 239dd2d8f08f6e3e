"""Where the head runs: two lanes of threads with bounded queues, cancellable jobs, stuck detection.

- Lanes: a request whose head cost (`TartClassifier.plan`) is at most `light_tokens` runs in the
  light lane, others in the heavy lane, each with its own threads: heavy requests cannot make a
  light one wait behind them.
- Bounded queues: a lane holds at most its threads plus `max_waiting` jobs (its `capacity`); past
  that, `Busy` (the service answers 503 with Retry-After) instead of a queue that grows while clients
  time out. From the settings: light 1 + `head_queue`, heavy `head_concurrency` + `head_queue`, and
  `head_queue` defaults to `max_concurrency`, so the API's own limit (429) bites first.
- Cancellation: a job is an iterator of chunks (`TartClassifier.iter_proba`: one batch of 32 queries
  each), asked for one chunk at a time. When the request's coroutine is cancelled (the client
  disconnected, or the request passed `timeout_s`), a job not started yet never starts, and a running
  one is not asked for its next chunk (one batch, at most `max_head_tokens` of work, runs to its end).
- Stuck detection: `oldest_running_s()` is how long the oldest running job has run; /readyz turns
  unready when it passes the configured limit.
"""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor


class Busy(Exception):
    pass


class Cancelled(Exception):
    """The request this job belongs to is gone."""


class Lane:
    def __init__(self, name: str, threads: int, max_waiting: int):
        self.name, self.threads, self.max_waiting = name, threads, max_waiting
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"tart-head-{name}")
        self._lock = threading.Lock()
        self.pending = 0  # submitted and not finished (running or waiting)
        self._running: dict[int, float] = {}  # job number -> start time
        self._next = 0
        self.cancelled = 0  # requests gone while their job waited or ran (the job stops at its next check)
        self.completed = 0  # jobs that ran to their end

    @property
    def capacity(self) -> int:
        """Jobs this lane holds, running or waiting, before it answers Busy."""
        return self.threads + self.max_waiting

    def _done(self, _future) -> None:
        with self._lock:
            self.pending -= 1

    def check(self) -> None:
        """Busy now if the lane is full: a request asks before its texts are embedded, so that a full lane
        costs it no embedding (`run` checks again: the lane may fill meanwhile)."""
        with self._lock:
            self._refuse_if_full()

    def _refuse_if_full(self) -> None:
        if self.pending >= self.capacity:
            raise Busy(f"the head's {self.name} lane is full ({self.pending} requests running or "
                       f"waiting): retry later")

    async def run(self, fn, *args) -> list:
        """The chunks of the iterator `fn(*args)`, made on this lane; raises Busy when the lane is full."""
        with self._lock:
            self._refuse_if_full()
            self.pending += 1
            self._next += 1
            number = self._next
        cancel = threading.Event()

        def job():
            if cancel.is_set():
                raise Cancelled()
            with self._lock:
                self._running[number] = time.monotonic()
            try:
                chunks = []
                for chunk in fn(*args):
                    chunks.append(chunk)
                    if cancel.is_set():  # the request is gone: the next chunk is not made
                        raise Cancelled()
                with self._lock:
                    self.completed += 1
                return chunks
            finally:
                with self._lock:
                    self._running.pop(number, None)

        future = self.pool.submit(job)
        future.add_done_callback(self._done)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancel.set()
            future.cancel()
            with self._lock:
                self.cancelled += 1
            raise

    def oldest_running_s(self) -> float:
        with self._lock:
            starts = list(self._running.values())
        return time.monotonic() - min(starts) if starts else 0.0


class HeadLanes:
    def __init__(self, light_threads: int, heavy_threads: int, light_tokens: int, max_waiting: int):
        self.light_tokens = light_tokens
        self.light = Lane("light", light_threads, max_waiting)
        self.heavy = Lane("heavy", heavy_threads, max_waiting)

    @classmethod
    def from_settings(cls, settings) -> "HeadLanes":
        """The service's lanes: one light thread of its own, `head_concurrency` heavy ones."""
        return cls(light_threads=1, heavy_threads=settings.head_concurrency,
                   light_tokens=settings.light_head_tokens, max_waiting=settings.head_queue)

    def lane(self, head_tokens: int) -> Lane:
        return self.light if head_tokens <= self.light_tokens else self.heavy

    async def run(self, head_tokens: int, fn, *args):
        return await self.lane(head_tokens).run(fn, *args)

    def oldest_running_s(self) -> float:
        return max(self.light.oldest_running_s(), self.heavy.oldest_running_s())

    def counters(self) -> dict:
        return {f"{lane.name}_{key}": value for lane in (self.light, self.heavy)
                for key, value in (("pending", lane.pending), ("cancelled", lane.cancelled),
                                   ("completed", lane.completed))}
