"""Registered tasks' fitted classifiers kept in memory, so that a request by task id skips the fit."""
from __future__ import annotations

from collections import OrderedDict
from threading import Lock


class FittedCache:
    """Fitted classifiers of registered tasks, by (task id, options), least recently used dropped."""

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def drop_task(self, task_id: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == task_id]:
                del self._items[key]
