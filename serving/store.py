"""Registered tasks in SQLite: their labelled examples and the examples' cached embeddings.

One file, WAL journal, `synchronous=FULL`: a task whose create call returned survives a crash of the
server (SIGKILL included). Each write is one transaction, so a failed request stores nothing.
Embeddings are float32 bytes, one row per example, tagged with the embedder that made them: when the
server runs another embedder the cache is stale and the service re-embeds the examples once.

A new connection per call keeps the store safe to use from the service's worker threads.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from tart.data.labels import sorted_labels

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    labels      TEXT NOT NULL,          -- JSON list, sorted
    n_examples  INTEGER NOT NULL,
    embedder    TEXT NOT NULL,          -- who made the cached embeddings
    dim         INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS examples (
    task_id     TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    text        TEXT NOT NULL,
    label       TEXT NOT NULL,
    embedding   BLOB NOT NULL,          -- float32, little-endian, `dim` values
    PRIMARY KEY (task_id, position)
);
CREATE TABLE IF NOT EXISTS unlabeled (     -- texts of the task without labels, which side-input heads read
    task_id     TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    text        TEXT NOT NULL,
    embedding   BLOB NOT NULL,          -- as examples.embedding
    PRIMARY KEY (task_id, position)
);
"""


class TaskNotFound(KeyError):
    pass


class TaskNameTaken(ValueError):
    """The name is taken; `task_id` is the task that holds it (a client re-running its set-up can use it)."""

    def __init__(self, name: str, task_id: str):
        super().__init__(f"a task named {name!r} already exists (task_id {task_id}); use it, delete it or "
                         f"pick another name")
        self.task_id = task_id


class StoreFull(ValueError):
    pass


@dataclass
class Task:
    id: str
    name: str
    labels: list[str]
    n_examples: int
    embedder: str
    dim: int
    created_at: str
    texts: list[str] | None = None
    example_labels: list[str] | None = None
    embeddings: np.ndarray | None = None  # (n_examples, dim) float32
    unlabeled_texts: list[str] | None = None
    unlabeled_embeddings: np.ndarray | None = None  # (n_unlabeled, dim) float32


class TaskStore:
    def __init__(self, path: str | Path, max_tasks: int = 10_000):
        self.path = Path(path)
        self.max_tasks = max_tasks
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self):
        """A connection in autocommit mode with the store's pragmas, closed on leaving (sqlite3's own
        context manager commits or rolls back but never closes)."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as conn:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=FULL")
            yield conn

    @contextlib.contextmanager
    def _transaction(self):
        """One write: BEGIN IMMEDIATE takes the write lock up front, so what the block checks still holds
        when it writes; sqlite3's context manager then commits, or rolls back on any exception."""
        with self._connect() as conn, conn:
            conn.execute("BEGIN IMMEDIATE")
            yield conn

    # ---- writes: one transaction each ----

    def create(self, name: str, texts: list[str], labels: list[str], embeddings: np.ndarray,
               embedder: str, unlabeled: list[str] = (), unlabeled_embeddings: np.ndarray | None = None) -> Task:
        embeddings = np.ascontiguousarray(embeddings, dtype="<f4")
        if embeddings.ndim != 2 or len(embeddings) != len(texts) or len(texts) != len(labels):
            raise ValueError("texts, labels and embeddings must have the same length")
        if len(unlabeled) != (0 if unlabeled_embeddings is None else len(unlabeled_embeddings)):
            raise ValueError("unlabeled texts and their embeddings must have the same length")
        task = Task(id=uuid.uuid4().hex, name=name, labels=sorted_labels(labels), n_examples=len(texts),
                    embedder=embedder, dim=embeddings.shape[1],
                    created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._transaction() as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()
            if count >= self.max_tasks:
                raise StoreFull(f"the task store is full (max_tasks={self.max_tasks}); delete a task first")
            taken = conn.execute("SELECT id FROM tasks WHERE name = ?", (name,)).fetchone()
            if taken:
                raise TaskNameTaken(name, taken[0])
            conn.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (task.id, name, json.dumps(task.labels), task.n_examples, embedder, task.dim,
                          task.created_at))
            conn.executemany("INSERT INTO examples VALUES (?, ?, ?, ?, ?)",
                             [(task.id, i, t, lab, embeddings[i].tobytes())
                              for i, (t, lab) in enumerate(zip(texts, labels))])
            if len(unlabeled):
                U = np.ascontiguousarray(unlabeled_embeddings, dtype="<f4")
                conn.executemany("INSERT INTO unlabeled VALUES (?, ?, ?, ?)",
                                 [(task.id, i, t, U[i].tobytes()) for i, t in enumerate(unlabeled)])
        return task

    def replace_embeddings(self, task_id: str, embeddings: np.ndarray, embedder: str,
                           unlabeled_embeddings: np.ndarray | None = None) -> None:
        """Re-cache a task's example (and unlabelled) embeddings, after the server changed embedder."""
        embeddings = np.ascontiguousarray(embeddings, dtype="<f4")
        with self._transaction() as conn:
            conn.execute("UPDATE tasks SET embedder = ?, dim = ? WHERE id = ?",
                         (embedder, embeddings.shape[1], task_id))
            conn.executemany("UPDATE examples SET embedding = ? WHERE task_id = ? AND position = ?",
                             [(row.tobytes(), task_id, i) for i, row in enumerate(embeddings)])
            if unlabeled_embeddings is not None:
                U = np.ascontiguousarray(unlabeled_embeddings, dtype="<f4")
                conn.executemany("UPDATE unlabeled SET embedding = ? WHERE task_id = ? AND position = ?",
                                 [(row.tobytes(), task_id, i) for i, row in enumerate(U)])

    def delete(self, task_id: str) -> None:
        with self._transaction() as conn:
            cur = conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            if cur.rowcount == 0:
                raise TaskNotFound(task_id)

    # ---- reads ----

    def get(self, task_id: str) -> Task:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise TaskNotFound(task_id)
            task = _task(row)
            rows = conn.execute("SELECT text, label, embedding FROM examples WHERE task_id = ? "
                                "ORDER BY position", (task_id,)).fetchall()
            task.texts = [r[0] for r in rows]
            task.example_labels = [r[1] for r in rows]
            task.embeddings = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(
                len(rows), task.dim).astype(np.float32)
            rows = conn.execute("SELECT text, embedding FROM unlabeled WHERE task_id = ? ORDER BY position",
                                (task_id,)).fetchall()
            task.unlabeled_texts = [r[0] for r in rows]
            task.unlabeled_embeddings = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(
                len(rows), task.dim).astype(np.float32)
        return task

    def exists(self, task_id: str) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is not None

    def id_of(self, name: str) -> str | None:
        """The id of the task with this name, or None."""
        with self._connect() as conn:
            row = conn.execute("SELECT id FROM tasks WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def list(self, limit: int = 100, offset: int = 0) -> tuple[list[Task], int]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM tasks ORDER BY created_at, name LIMIT ? OFFSET ?",
                                (limit, offset)).fetchall()
            (total,) = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()
        return [_task(r) for r in rows], total


def _task(row) -> Task:
    id_, name, labels, n, embedder, dim, created = row
    return Task(id=id_, name=name, labels=json.loads(labels), n_examples=n, embedder=embedder, dim=dim,
                created_at=created)
