"""The BentoML app in-process, driven through Starlette's test client (no network; the embedding service
runs locally): classify, tasks, a stale cache, the OpenAPI document."""
from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

from tart.serving.settings import get_settings
from tart.serving.store import TaskStore


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from starlette.testclient import TestClient

    from tart.head.model import TartConfig, TartReasoningModel

    head = tmp_path_factory.mktemp("head")
    torch.manual_seed(0)
    TartReasoningModel(TartConfig()).save_pretrained(head)
    mp = pytest.MonkeyPatch()
    for key, value in {"TART_CHECKPOINT": str(head), "TART_EMBEDDER": "minilm-l6", "TART_CONFIG": "",
                       "TART_STORE_PATH": str(tmp_path_factory.mktemp("store") / "t.sqlite3"),
                       "TART_MAX_TEXTS": "4", "TART_MAX_HEAD_TOKENS": "400", "BENTOML_DO_NOT_TRACK": "true"}.items():
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
    assert after["embedder"]["tokens_per_s"] > 0 and after["service"]["head_tokens_per_s"] > 0  # measured at start
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
        assert set(responses) == {"200", "400", "401", "408", "413", "415", "429", "500", "503", "504"} | extra, route
        for status, response in responses.items():
            if status != "200":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert set(schemas["Error"]["properties"]) == {"error", "task_id"}
    # the 409 a name clash gets is the documented shape, with the existing task's id
    body = {"name": "dup", "examples": EXAMPLES}
    created = client.post("/tasks/create", json=body).json()
    r = client.post("/tasks/create", json=body)
    assert r.status_code == 409 and r.json() == {
        "error": f"name: a task named 'dup' already exists (task_id {created['id']}); use it, delete it or "
                 f"pick another name", "task_id": created["id"]}


def test_rerunning_the_readme_registration_snippet_gets_the_same_task(app_client):
    """README's snippet reads `id`, or `task_id` when the name is taken (a re-run): both runs give one task."""
    import re
    from pathlib import Path

    client, _ = app_client
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = re.search(r"ID=\$\(curl -s http://127.0.0.1:3000/tasks/create .*?-d '(.*?)' \\\n"
                        r"  \| python -c '(.*?)'\)", readme, re.S)
    body, parse = snippet.group(1), snippet.group(2)
    ids = []
    for _ in range(2):
        answer = client.post("/tasks/create", content=body, headers={"Content-Type": "application/json"}).text
        run = subprocess.run([sys.executable, "-c", parse], input=answer, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        ids.append(run.stdout.strip())
    assert ids[0] == ids[1] and client.post("/tasks/get", json={"task_id": ids[0]}).status_code == 200


def test_a_task_no_default_request_could_use_is_refused(app_client):
    """Under max_head_tokens=400, 12 examples of 6 labels (one-vs-rest with the random binary head: 6 problems
    x 2 label swaps x 4 orders = 48 sequences of 12 examples and the 6 label names, 912 tokens for one text)
    fit no request with default options: refused at creation, with the numbers, and nothing stored. The 6
    examples of 3 labels the other tests register (24 sequences of 9, 240 tokens for one text) still are
    accepted and answer a default request."""
    client, _ = app_client
    wide = [{"text": f"thing {i}", "label": f"label-{i % 6}"} for i in range(12)]
    r = client.post("/tasks/create", json={"name": "unusable", "examples": wide})
    assert r.status_code == 413, r.text
    message = r.json()["error"]
    assert "default options" in message and "912 head tokens" in message and "max_head_tokens=400" in message
    assert "unusable" not in [t["name"] for t in client.post("/tasks/list", json={}).json()["tasks"]]
    task_id = client.post("/tasks/create", json={"name": "usable", "examples": EXAMPLES}).json()["id"]
    assert client.post("/tasks/classify", json={"task_id": task_id, "texts": ["a cow"]}).status_code == 200


def test_a_request_body_is_validated_once(app_client, monkeypatch):
    """The request gate validates the body; BentoML takes the gate's model instead of parsing it again."""
    client, _ = app_client
    from tart.serving import schemas

    calls = []
    original = schemas.ClassifyRequest.model_validate_json.__func__

    def counting(cls, *args, **kwargs):
        calls.append(cls.__name__)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(schemas.ClassifyRequest, "model_validate_json", classmethod(counting))
    r = client.post("/classify", json={"examples": EXAMPLES, "texts": ["a cow"]})
    assert r.status_code == 200, r.text
    assert calls == ["ClassifyRequest"]


def test_every_api_route_declared_by_the_service_is_gated(app_client):
    """The gate's routes are the service's own declarations (`Tart.apis`): each takes POST only (405,
    before its body is read) and validates its body with the model its decorator names."""
    client, service = app_client
    routes = {api.route for api in service.Tart.apis.values()}
    assert {"/classify", "/tasks/create", "/tasks/classify", "/stats"} <= routes
    for route in sorted(routes):
        r = client.get(route)
        assert r.status_code == 405 and r.headers["allow"] == "POST" and route in r.json()["error"], (route, r.text)
    r = client.post("/stats", json={"unexpected": 1})
    assert r.status_code == 400 and "unexpected" in r.json()["error"], r.text


def test_unlabelled_texts_and_transductive_requests(app_client):
    """A text's answer does not depend on the others in its request. `unlabeled` texts (and the request's
    own, `transductive`) are read by heads with side inputs only (tests/test_label_names.py): this binary
    head's answers stay as they are, and the request is still checked."""
    client, _ = app_client

    def scores(texts, **extra):
        body = client.post("/classify", json={"examples": EXAMPLES, "texts": texts, **extra})
        assert body.status_code == 200, body.text
        return np.array([[p["scores"][c] for c in ("animal", "food", "tool")] for p in body.json()["predictions"]])

    alone, together = scores(["a cow"]), scores(["a cow", "rice", "a hammer"])
    assert np.allclose(alone[0], together[0], atol=1e-5)
    pool = ["a horse", "pasta", "a wrench", "a lamb"]
    assert np.allclose(scores(["a cow"], unlabeled=pool)[0], alone[0], atol=1e-5)
    assert np.allclose(scores(["a cow"], options={"transductive": True})[0], alone[0], atol=1e-5)
    r = client.post("/classify", json={"examples": EXAMPLES, "texts": ["a cow"], "unlabeled": ["x"] * 5})
    assert r.status_code == 400 and "unlabeled" in r.json()["error"]


@pytest.mark.parametrize("invisible", ["\u200b", "\ufeff", "\u00ad", "\u200d", "\u200c", " \u200b\t\ufeff "],
                         ids=["zwsp", "bom", "soft-hyphen", "zwj", "zwnj", "mixed-with-spaces"])
def test_texts_of_only_zero_width_characters_are_refused_naming_the_field(app_client, invisible):
    client, _ = app_client
    before = client.post("/stats").json()["embedder"]["texts"]
    r = client.post("/classify", json={"examples": EXAMPLES, "texts": ["a cow", invisible * 3]})
    assert r.status_code == 400 and r.json()["error"] == ("texts[1]: must contain a visible character, not only "
                                                          "spaces, control or zero-width characters")
    examples = [{"text": invisible, "label": "animal"}] + EXAMPLES[1:]
    r = client.post("/tasks/create", json={"name": "invisible", "examples": examples})
    assert r.status_code == 400 and r.json()["error"].startswith("examples[0].text: "), r.text
    assert client.post("/stats").json()["embedder"]["texts"] == before  # refused before anything is embedded
    # a visible character among them is a text
    assert client.post("/classify", json={"examples": EXAMPLES, "texts": [invisible + "a cow"]}).status_code == 200


def test_a_registered_task_keeps_its_unlabelled_texts(app_client):
    client, _ = app_client
    pool = ["a lamb", "noodles", "a wrench"]
    r = client.post("/tasks/create", json={"name": "with-pool", "examples": EXAMPLES, "unlabeled": pool})
    assert r.status_code == 200, r.text
    task = TaskStore(get_settings().store_path).get(r.json()["id"])
    assert task.unlabeled_texts == pool and task.unlabeled_embeddings.shape == (3, 384)
    answer = client.post("/tasks/classify", json={"task_id": task.id, "texts": ["a cow"]})
    assert answer.status_code == 200
    r = client.post("/tasks/create", json={"name": "too-many", "examples": EXAMPLES, "unlabeled": ["x"] * 5})
    assert r.status_code == 400 and "unlabeled" in r.json()["error"]


def test_a_full_head_lane_refuses_before_anything_is_embedded(app_client, monkeypatch):
    """Issue 28: a request the head's lane cannot take gets its 503 before its texts are embedded."""
    from tart.serving.headpool import Lane

    client, _ = app_client
    before = client.post("/stats").json()["embedder"]["texts"]
    monkeypatch.setattr(Lane, "capacity", property(lambda self: 0))  # every lane full
    r = client.post("/classify", json={"examples": EXAMPLES, "texts": ["a cow", "a pear"]})
    assert r.status_code == 503 and "lane is full" in r.json()["error"] and r.headers["retry-after"]
    assert client.post("/stats").json()["embedder"]["texts"] == before
    monkeypatch.undo()
    assert client.post("/classify", json={"examples": EXAMPLES, "texts": ["a cow"]}).status_code == 200
