"""Serving pieces in-process: settings, the SQLite task store, the middleware, `tart serve`'s
argument handling, and the BentoML app itself driven through Starlette's test client (no network)."""
from __future__ import annotations

import argparse
import importlib
import sqlite3

import numpy as np
import pytest

from tart.serving.settings import Settings, get_settings, load_settings
from tart.serving.store import StoreFull, TaskNameTaken, TaskNotFound, TaskStore

# ---- settings ----


def test_settings_precedence_defaults_file_env(tmp_path):
    assert load_settings(env={}) == Settings()
    cfg = tmp_path / "serve.toml"
    cfg.write_text('[serving]\nmax_texts = 10\nembedder = "minilm-l6"\nstore_path = "~/x.sqlite3"\n')
    s = load_settings(cfg, env={})
    assert (s.max_texts, s.embedder) == (10, "minilm-l6") and not s.store_path.startswith("~")
    s = load_settings(env={"TART_CONFIG": str(cfg), "TART_MAX_TEXTS": "20", "TART_CHECKPOINT": "/ckpt"})
    assert (s.max_texts, s.embedder, s.checkpoint) == (20, "minilm-l6", "/ckpt")


@pytest.mark.parametrize("env,needle", [({"TART_MAX_TEXTS": "many"}, "max_texts must be an integer"),
                                        ({"TART_MAX_TEXTS": "0"}, "max_texts must be >= 1"),
                                        ({"TART_N_PERMUTATIONS": "20"}, "exceeds max_permutations"),
                                        ({"TART_EMBED_DTYPE": "fp16"}, "embed_dtype must be auto, bfloat16 or float32"),
                                        ({"TART_REQUIRE_API_KEY": "maybe"}, "require_api_key must be auto, yes or no"),
                                        ({"TART_MAX_HEAD_TOKENS": "0"}, "max_head_tokens must be >= 1")])
def test_bad_settings_are_named(env, needle):
    with pytest.raises(ValueError, match=needle):
        load_settings(env=env)


def test_unknown_setting_in_file(tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text("max_txts = 3\n")
    with pytest.raises(ValueError, match="unknown setting.*max_txts"):
        load_settings(cfg, env={})


# ---- task store ----


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


def test_store_replace_embeddings(tmp_path):
    store = TaskStore(tmp_path / "t.sqlite3")
    task = make_task(store)[0]
    new = np.ones((4, 5), np.float32)
    store.replace_embeddings(task.id, new, "other")
    got = store.get(task.id)
    assert (got.embedder, got.dim) == ("other", 5)
    np.testing.assert_array_equal(got.embeddings, new)


# ---- middleware ----


def test_readable_errors():
    from tart.serving.middleware import readable

    body = {"error": "2 validation error for X", "detail": [
        {"loc": ["examples", 3, "text"], "msg": "String should have at most 9 characters"},
        {"loc": [], "msg": "Invalid JSON"}]}
    assert readable(body) == "examples[3].text: String should have at most 9 characters; body: Invalid JSON"
    assert readable([{"error": "nope"}]) == "nope"
    assert readable({"detail": "Runners are not ready."}) == "Runners are not ready."
    assert readable("Internal Server Error") == "Internal Server Error"


def test_request_gate_size_and_content_type():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from tart.serving.middleware import RequestGate

    async def echo(request):
        return JSONResponse({"n": len(await request.body())})

    client = TestClient(RequestGate(Starlette(routes=[Route("/", echo, methods=["POST"])]), max_body_bytes=100))
    assert client.post("/", content=b"x" * 100).json() == {"n": 100}
    r = client.post("/", content=b"x" * 101)
    assert r.status_code == 413 and "max_body_bytes=100" in r.json()["error"]
    r = client.post("/", content=iter([b"x" * 60, b"x" * 60]))  # chunked: no content-length
    assert r.status_code == 413
    r = client.post("/", content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    assert client.post("/", content=b"{}", headers={"content-type": "application/json; charset=utf-8"}).json() == {"n": 2}


# ---- tart serve ----


def test_serve_parser_and_environment(tmp_path):
    from tart.serving.cli import add_serve_parser, server_environment

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert (args.host, args.port, args.func.__name__) == ("127.0.0.1", 3000, "serve_command")
    args = parser.parse_args(["serve", "--port", "4000", "--embedder", "minilm-l6", "--store", str(tmp_path / "s.db")])
    env = server_environment(args, base={})
    assert env["TART_EMBEDDER"] == "minilm-l6" and env["TART_STORE_PATH"] == str(tmp_path / "s.db")
    assert env["BENTOML_DO_NOT_TRACK"] == "true" and "TART_CHECKPOINT" not in env


def test_serve_command_reports_bad_input_before_starting(tmp_path):
    from tart.serving.cli import serve_command

    base = dict(host="127.0.0.1", port=3000, config=None, checkpoint=None, embedder=None, store=None)
    with pytest.raises(FileNotFoundError, match="no head checkpoint"):
        serve_command(argparse.Namespace(**{**base, "checkpoint": str(tmp_path / "missing")}))
    from tart.reasoning import TartConfig, TartReasoningModel

    TartReasoningModel(TartConfig()).save_pretrained(tmp_path / "head")
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        serve_command(argparse.Namespace(**{**base, "checkpoint": str(tmp_path / "head"), "embedder": "no-such-model"}))
    with pytest.raises(ValueError, match="--port"):
        serve_command(argparse.Namespace(**{**base, "port": 70000}))


# ---- the app in-process (BentoML's ASGI app; the embedding service runs locally) ----


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from starlette.testclient import TestClient

    from tart.reasoning import TartConfig, TartReasoningModel

    head = tmp_path_factory.mktemp("head")
    torch.manual_seed(0)
    TartReasoningModel(TartConfig()).save_pretrained(head)
    mp = pytest.MonkeyPatch()
    for key, value in {"TART_CHECKPOINT": str(head), "TART_EMBEDDER": "minilm-l6", "TART_CONFIG": "",
                       "TART_STORE_PATH": str(tmp_path_factory.mktemp("store") / "t.sqlite3"),
                       "TART_MAX_TEXTS": "4", "BENTOML_DO_NOT_TRACK": "true"}.items():
        mp.setenv(key, value)
    get_settings.cache_clear()
    import tart.serving.schemas
    import tart.serving.service

    importlib.reload(tart.serving.schemas)  # the limits are read when the modules load
    service = importlib.reload(tart.serving.service)
    threads = torch.get_num_threads()  # the services set torch's thread count for their process
    with TestClient(service.Tart.to_asgi()) as client:
        yield client, service
    torch.set_num_threads(threads)
    mp.undo()
    get_settings.cache_clear()
    importlib.reload(tart.serving.schemas)
    importlib.reload(tart.serving.service)


EXAMPLES = [{"text": t, "label": y} for t, y in [("a cat", "animal"), ("a dog", "animal"), ("bread", "food"),
                                                 ("soup", "food"), ("a drill", "tool"), ("a saw", "tool")]]


def test_in_process_classify_and_task(app_client):
    client, _ = app_client
    body = client.post("/classify", json={"examples": EXAMPLES, "texts": ["a cow", "rice"]}).json()
    assert [set(p["scores"]) for p in body["predictions"]] == [{"animal", "food", "tool"}] * 2
    r = client.post("/classify", json={"examples": EXAMPLES, "texts": ["x"] * 5})
    assert r.status_code == 400 and "texts: List should have at most 4 items" in r.json()["error"]
    task_id = client.post("/tasks/create", json={"name": "in-process", "examples": EXAMPLES}).json()["id"]
    before = client.post("/stats").json()
    by_id = client.post("/tasks/classify", json={"task_id": task_id, "texts": ["a cow", "rice"]}).json()
    after = client.post("/stats").json()
    assert after["embedder"]["texts"] - before["embedder"]["texts"] == 2
    assert [p["label"] for p in by_id["predictions"]] == [p["label"] for p in body["predictions"]]


def test_in_process_stale_cache_is_reembedded_once(app_client):
    client, service = app_client
    store = TaskStore(service.S.store_path)
    vecs = np.zeros((len(EXAMPLES), 7), np.float32)  # as if made by another embedder
    task = store.create("stale", [e["text"] for e in EXAMPLES], [e["label"] for e in EXAMPLES], vecs, "old-model")
    first = client.post("/tasks/classify", json={"task_id": task.id, "texts": ["a cow"]})
    assert first.status_code == 200, first.text
    assert store.get(task.id).embedder == "minilm-l6" and store.get(task.id).dim == 384
    before = client.post("/stats").json()["service"]["examples_reembedded"]
    client.post("/tasks/classify", json={"task_id": task.id, "texts": ["a cow"]})
    assert client.post("/stats").json()["service"]["examples_reembedded"] == before


# ---- API keys ----


def test_api_keys_required_off_loopback():
    assert not load_settings(env={}).keys_required  # 127.0.0.1 by default: no key needed
    for host in ("0.0.0.0", "192.168.1.5", "example.org", "::"):
        with pytest.raises(ValueError, match="API keys are required"):
            load_settings(env={"TART_HOST": host})
    assert load_settings(env={"TART_HOST": "0.0.0.0", "TART_API_KEYS": "k1, k2"}).keys == {"k1", "k2"}
    assert not load_settings(env={"TART_HOST": "0.0.0.0", "TART_REQUIRE_API_KEY": "no"}).keys  # explicitly off
    for host in ("localhost", "127.0.0.2", "::1"):
        assert not load_settings(env={"TART_HOST": host}).keys_required
    with pytest.raises(ValueError, match="API keys are required"):
        load_settings(env={"TART_REQUIRE_API_KEY": "yes"})


def test_serve_refuses_a_public_host_without_keys(tmp_path):
    from tart.serving.cli import serve_command

    args = argparse.Namespace(host="0.0.0.0", port=3000, config=None, checkpoint=None, embedder=None, store=None)
    with pytest.raises(ValueError, match="TART_API_KEYS"):
        serve_command(args)


def test_request_gate_api_keys():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from tart.serving.middleware import ErrorShape, RequestGate

    async def ok(request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/stats", ok, methods=["POST"]), Route("/readyz", ok)])
    client = TestClient(ErrorShape(RequestGate(app, max_body_bytes=100, api_keys=frozenset({"s3cret"}))))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cre"}, {"Authorization": "s3cret"}):
        r = client.post("/stats", json={}, headers=headers)
        assert r.status_code == 401 and "API key" in r.json()["error"], headers
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.post("/stats", json={}, headers={"Authorization": "Bearer s3cret"}).json() == {"ok": True}
    assert client.post("/stats", json={}, headers={"X-API-Key": "s3cret"}).json() == {"ok": True}
    assert client.get("/readyz").status_code == 200  # probes never need a key
    open_client = TestClient(RequestGate(app, max_body_bytes=100))  # no keys configured: open
    assert open_client.post("/stats", json={}).status_code == 200


def test_error_shape_and_retry_after():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from tart.serving.middleware import ErrorShape

    async def busy(request):
        return JSONResponse([{"error": "process is overloaded"}], status_code=503)

    async def plain(request):
        return PlainTextResponse("Method Not Allowed", status_code=405)

    client = TestClient(ErrorShape(Starlette(routes=[Route("/busy", busy), Route("/plain", plain)])))
    r = client.get("/busy")
    assert r.status_code == 503 and r.json() == {"error": "process is overloaded"} and r.headers["retry-after"] == "1"
    r = client.get("/plain")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}


def test_openapi_document_is_true(app_client):
    client, _ = app_client
    spec = client.get("/docs.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    task_id = schemas["ClassifyResponse"]["properties"]["task_id"]
    assert task_id["nullable"] is True and "task_id" in schemas["ClassifyResponse"]["required"]
    assert schemas["Options"]["properties"]["n_permutations"]["nullable"] is True
    expected = {"/classify": {"422"}, "/tasks/create": {"409"}, "/tasks/list": set(), "/tasks/get": {"404"},
                "/tasks/delete": {"404"}, "/tasks/classify": {"404", "422"}}
    for route, extra in expected.items():
        responses = spec["paths"][route]["post"]["responses"]
        assert set(responses) == {"200", "400", "401", "413", "415", "429", "500", "503", "504"} | extra, route
        for status, response in responses.items():
            if status != "200":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    # the 409 a name clash gets is the documented shape
    body = {"name": "dup", "examples": EXAMPLES}
    assert client.post("/tasks/create", json=body).status_code == 200
    r = client.post("/tasks/create", json=body)
    assert r.status_code == 409 and list(r.json()) == ["error"]
