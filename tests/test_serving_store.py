"""The SQLite task store (`tart.serving.store`): round trip, persistence, errors, nothing half-stored."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from tart.serving.store import StoreFull, TaskNameTaken, TaskNotFound, TaskStore


def make_task(store, name="t", n=4, dim=8, labels=("a", "b")):
    vecs = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    texts = [f"text {i}" for i in range(n)]
    ys = [labels[i % len(labels)] for i in range(n)]
    return store.create(name, texts, ys, vecs, "minilm-l6"), texts, ys, vecs


def test_store_round_trip_and_persistence(tmp_path):
    path = tmp_path / "sub" / "tasks.sqlite3"
    task, texts, ys, vecs = make_task(TaskStore(path))
    again = TaskStore(path).get(task.id)  # a fresh store on the same file: what a restart sees
    assert (again.name, again.labels, again.n_examples, again.dim) == ("t", ["a", "b"], 4, 8)
    assert again.texts == texts and again.example_labels == ys
    np.testing.assert_array_equal(again.embeddings, vecs)
    assert again.embeddings.dtype == np.float32
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_list_delete_and_errors(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3", max_tasks=3)
    ids = [make_task(store, name=f"t{i}")[0].id for i in range(3)]
    tasks, total = store.list(limit=2, offset=1)
    assert total == 3 and [t.id for t in tasks] == ids[1:]
    with pytest.raises(StoreFull, match="max_tasks=3"):
        make_task(store, name="t9")
    store.delete(ids[0])
    with pytest.raises(TaskNotFound):
        store.get(ids[0])
    with pytest.raises(TaskNotFound):
        store.delete(ids[0])
    with sqlite3.connect(store.path) as conn:  # the examples went with the task
        assert conn.execute("SELECT COUNT(*) FROM examples WHERE task_id = ?", (ids[0],)).fetchone()[0] == 0


def test_store_failed_create_stores_nothing(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3")
    make_task(store, name="dup")
    with pytest.raises(TaskNameTaken, match="'dup' already exists"):
        make_task(store, name="dup")
    with pytest.raises(ValueError, match="same length"):
        store.create("short", ["a", "b"], ["x", "y"], np.zeros((3, 4)), "e")
    assert store.list()[1] == 1
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 4


def test_store_write_interrupted_midway_stores_nothing(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3")
    with pytest.raises(KeyboardInterrupt):  # any exception, not only an Exception, rolls back
        with store._transaction() as conn:
            conn.execute("INSERT INTO tasks VALUES ('x', 'half', '[]', 0, 'e', 1, 'now')")
            raise KeyboardInterrupt
    assert store.list()[1] == 0 and store.id_of("half") is None
    make_task(store, name="half")  # and the store is not left locked


def test_store_replace_embeddings(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3")
    task = make_task(store)[0]
    new = np.ones((4, 5), np.float32)
    store.replace_embeddings(task.id, new, "other")
    got = store.get(task.id)
    assert (got.embedder, got.dim) == ("other", 5)
    np.testing.assert_array_equal(got.embeddings, new)


def test_store_keeps_a_tasks_unlabelled_texts(tmp_path):
    """Kept with the task, re-embedded with its examples, deleted with it; a store made before them
    (no such table) gains it when opened."""
    path = tmp_path / "t.sqlite3"
    with sqlite3.connect(path) as conn:  # a store from before: its tables without `unlabeled`
        conn.executescript("CREATE TABLE tasks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, labels TEXT NOT NULL, "
                           "n_examples INTEGER NOT NULL, embedder TEXT NOT NULL, dim INTEGER NOT NULL, "
                           "created_at TEXT NOT NULL);")
    store = TaskStore(path)
    U = np.arange(24, dtype=np.float32).reshape(3, 8)
    task = store.create("t", ["a text", "b text"], ["a", "b"], np.zeros((2, 8), np.float32), "minilm-l6",
                        ["u0", "u1", "u2"], U)
    got = TaskStore(path).get(task.id)
    assert got.unlabeled_texts == ["u0", "u1", "u2"]
    np.testing.assert_array_equal(got.unlabeled_embeddings, U)
    assert make_task(store, name="plain")[0] and store.get(store.id_of("plain")).unlabeled_texts == []
    store.replace_embeddings(task.id, np.ones((2, 5), np.float32), "other", np.full((3, 5), 2, np.float32))
    np.testing.assert_array_equal(store.get(task.id).unlabeled_embeddings, np.full((3, 5), 2))
    with pytest.raises(ValueError, match="unlabeled texts and their embeddings"):
        store.create("bad", ["a"], ["a"], np.zeros((1, 8)), "e", ["u0", "u1"], np.zeros((1, 8)))
    store.delete(task.id)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM unlabeled").fetchone()[0] == 0


def test_fitted_cache_is_lru_and_drops_a_task():
    from tart.serving.fitted_cache import FittedCache

    cache = FittedCache(size=2)
    cache.put(("t1", "a"), 1)
    cache.put(("t2", "a"), 2)
    assert cache.get(("t1", "a")) == 1  # t1 is now the most recent
    cache.put(("t3", "a"), 3)           # drops t2
    assert cache.get(("t2", "a")) is None and cache.get(("t3", "a")) == 3
    cache.drop_task("t1")
    assert cache.get(("t1", "a")) is None
    assert (cache.hits, cache.misses) == (2, 2)


def test_store_lookups_and_the_listing_order(tmp_path):
    """exists / id_of / get answer for the task and only for it; list gives the tasks in creation order
    (same second: by name), from the first by default; labels are stored sorted whatever their order."""
    store = TaskStore(tmp_path / "t.sqlite3")
    b = store.create("b-task", ["x", "y", "z"], ["zebra", "apple", "zebra"], np.eye(3, 5), "e")
    a = store.create("a-task", ["x", "y"], ["p", "q"], np.ones((2, 5)), "e")
    assert (b.name, b.embedder, b.dim, b.n_examples) == ("b-task", "e", 5, 3)  # the task as stored
    assert b.labels == ["apple", "zebra"] and store.get(b.id).labels == ["apple", "zebra"]
    assert store.get(b.id).example_labels == ["zebra", "apple", "zebra"]  # each example keeps its own
    assert (store.get(b.id).n_examples, store.get(b.id).dim) == (3, 5)
    assert store.exists(a.id) and store.exists(b.id) and not store.exists("nope")
    assert store.id_of("a-task") == a.id and store.id_of("b-task") == b.id and store.id_of("c-task") is None
    tasks, total = store.list()
    assert total == 2 and sorted(t.id for t in tasks) == sorted([a.id, b.id])
    assert [t.name for t in tasks] == [t.name for t in sorted([a, b], key=lambda t: (t.created_at, t.name))]
    assert [t.name for t in store.list(limit=1)[0]] == [tasks[0].name]
    assert [t.name for t in store.list(offset=1)[0]] == [tasks[1].name]
    got = tasks[[t.id for t in tasks].index(b.id)]
    assert (got.name, got.labels, got.n_examples, got.embedder, got.dim) == ("b-task", ["apple", "zebra"], 3, "e", 5)
    assert got.created_at == b.created_at and got.created_at.endswith("+00:00") and "." not in got.created_at
    store.delete(a.id)
    assert not store.exists(a.id) and store.id_of("a-task") is None and store.exists(b.id)
    for call in (store.get, store.delete):  # the error names the task it did not find
        with pytest.raises(TaskNotFound) as err:
            call(a.id)
        assert err.value.args == (a.id,)


def test_store_refuses_mismatched_examples_and_names_the_holder_of_a_name(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3")
    first = make_task(store, name="dup")[0]
    with pytest.raises(TaskNameTaken) as err:
        make_task(store, name="dup")
    assert err.value.task_id == first.id and first.id in str(err.value)
    for texts, labels, vectors in [(["a", "b"], ["x"], np.zeros((2, 4))),  # fewer labels
                                   (["a"], ["x"], np.zeros(4)),  # one vector, not a matrix
                                   (["a", "b"], ["x", "y"], np.zeros((1, 4)))]:
        with pytest.raises(ValueError, match="same length"):
            store.create("new", texts, labels, vectors, "e")
    with pytest.raises(ValueError, match="unlabeled texts"):
        store.create("new", ["a"], ["x"], np.zeros((1, 4)), "e", ["u"])  # texts without their embeddings
    assert store.list()[1] == 1 and store.id_of("new") is None


def test_store_keeps_embeddings_exactly_and_a_reembedding_leaves_the_pool_alone(tmp_path):
    """Float32 values survive the round trip bit for bit, whatever dtype was given; replacing the examples'
    embeddings without new unlabelled ones keeps the pool's as they were."""
    store = TaskStore(tmp_path / "t.sqlite3")
    vecs = np.random.default_rng(1).normal(size=(3, 6))  # float64 in
    U = np.random.default_rng(2).normal(size=(2, 6))  # float64 too
    task = store.create("t", ["a", "b", "c"], ["x", "y", "x"], vecs, "e", ["u0", "u1"], U)
    U = U.astype(np.float32)
    got = store.get(task.id)
    np.testing.assert_array_equal(got.embeddings, vecs.astype(np.float32))
    np.testing.assert_array_equal(got.unlabeled_embeddings, U)
    assert got.embeddings.dtype == np.float32 and got.unlabeled_embeddings.dtype == np.float32
    store.replace_embeddings(task.id, np.full((3, 6), 7.0), "other")
    got = store.get(task.id)
    np.testing.assert_array_equal(got.embeddings, np.full((3, 6), 7.0, np.float32))
    np.testing.assert_array_equal(got.unlabeled_embeddings, U)
    assert got.unlabeled_texts == ["u0", "u1"] and got.embedder == "other"


def test_store_list_pages_100_tasks_by_default(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3")
    for i in range(101):
        store.create(f"t{i:03d}", ["x"], ["a"], np.zeros((1, 2)), "e")
    tasks, total = store.list()
    assert total == 101 and len(tasks) == 100 and len(store.list(offset=100)[0]) == 1
