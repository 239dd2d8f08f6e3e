"""The HTTP API over a real server on 127.0.0.1: classify, tasks, validation errors, batching,
persistence across SIGKILL and SIGTERM, and overload.

One server per module (the fast minilm-l6 embedder, a temporary SQLite store, small limits so that
breaking them is cheap). It uses the shipped head when there is one, else a randomly initialised head:
these tests check the service, not the head's accuracy.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import pytest

pytest.importorskip("bentoml")

from local_server import LocalServer  # noqa: E402

LIMITS = {"TART_MAX_EXAMPLES": "16", "TART_MAX_TEXTS": "8", "TART_MAX_TEXT_CHARS": "300", "TART_MAX_LABELS": "5",
          "TART_MAX_BODY_BYTES": "60000", "TART_MAX_NAME_CHARS": "40", "TART_N_PERMUTATIONS": "2",
          "TART_MAX_EMBED_TOKENS": "1000", "TART_MAX_HEAD_TOKENS": "300", "TART_EMBED_MAX_BATCH_SIZE": "32",
          "TART_BODY_TIMEOUT_S": "5"}

ANIMALS = ["a cat sleeping on the sofa", "a dog barking at the mailman", "a horse in the field", "a small bird"]
FOODS = ["fresh bread from the oven", "a bowl of tomato soup", "cheese and crackers", "an apple pie"]
TOOLS = ["a hammer and nails", "a screwdriver set", "an electric drill", "a wrench"]


def examples(*groups):
    names = ["animal", "food", "tool"]
    return [{"text": t, "label": names[i]} for i, g in enumerate(groups) for t in g]


@pytest.fixture(scope="module")
def head_dir(tmp_path_factory):
    from tart.head.load import CHECKPOINTS, DEFAULT_HEAD

    shipped = CHECKPOINTS / DEFAULT_HEAD  # the default head, whichever it is
    if (shipped / "config.json").is_file() and any(shipped.glob("*.safetensors")):
        return str(shipped)
    import torch

    from tart.head.model import TartConfig, TartReasoningModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("head")
    TartReasoningModel(TartConfig()).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def server(head_dir, tmp_path_factory, home):
    store = tmp_path_factory.mktemp("store") / "tasks.sqlite3"
    # HOME is an empty folder and BENTOML_HOME/TMPDIR are unset: `tart serve` must choose them itself
    env = {"TART_CHECKPOINT": head_dir, "TART_EMBEDDER": "minilm-l6", "TART_STORE_PATH": str(store),
           "TART_CONFIG": "", "HOME": str(home), "BENTOML_HOME": "", "TMPDIR": "", **LIMITS,
           "TART_EMBED_DTYPE": "auto", "TART_EMBED_BACKEND": ""}  # the defaults (conftest: float32, torch in-process)
    # started the way users start it: `tart serve` (which becomes `bentoml serve`)
    srv = LocalServer(env, log_path=tmp_path_factory.mktemp("log") / "server.log", via_cli=True).start()
    yield srv
    srv.stop()


def post(server, path, payload=None, **kw):
    return httpx.post(server.url + path, json=payload if payload is not None else {}, timeout=60, **kw)


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def counters(server):
    return ok(post(server, "/stats"))


def check_predictions(body, n, labels):
    assert len(body["predictions"]) == n
    for p in body["predictions"]:
        assert set(p["scores"]) == set(labels)
        assert abs(sum(p["scores"].values()) - 1) < 1e-4
        assert p["label"] == max(p["scores"], key=p["scores"].get)
    assert body["model"]["embedder"] == "minilm-l6" and body["model"]["head"]


# ---- BentoML's own endpoints ----

def test_started_by_tart_serve(server, home):
    assert "tart serve: http://127.0.0.1:" in server.log_tail(100_000)
    assert not (home / "bentoml").exists()  # BentoML's home is under the project's cache instead
    assert list(home.iterdir()) == []


def test_the_embedder_runs_the_default_backend_auto(server):
    """No backend set: `tart serve` made auto's ONNX export before the workers started, the embedding worker
    loaded both backends of MiniLM's table rows at start (tart.defaults.EMBED_BACKEND_TABLE), and a
    request's short texts run in int8 there."""
    assert "tart: minilm-l6 in onnx-int8: ready at " in server.log_tail(100_000)
    before = counters(server)["embedder"]
    assert before["backend"] == "auto" and set(before["loaded"]) == {"onnx-int8", "torch"}
    # torch's weights, dtype auto: bfloat16 where the CPU has it natively (tests/test_serving_dtype.py)
    assert before["loaded"]["torch"] in ("bfloat16", "float32") and before["loaded"]["onnx-int8"] == "qint8"
    fresh = [f"a cow number {time.time_ns()} in the barn", f"rice pudding number {time.time_ns()}"]  # not cached
    ok(post(server, "/classify", {"examples": examples(ANIMALS, FOODS), "texts": fresh}))
    after = counters(server)["embedder"]
    assert after["backend_calls"].get("onnx-int8", 0) > before["backend_calls"].get("onnx-int8", 0)
    assert after["backend_calls"].get("torch", 0) == before["backend_calls"].get("torch", 0)


def test_expected_errors_are_one_info_line(server):
    r = post(server, "/classify", {"examples": TWO, "texts": ["x"], "options": {"n_permutations": "4"}})
    assert r.status_code == 400
    log = server.log_tail(200_000)
    lines = [line for line in log.splitlines() if "/classify -> 400" in line and "n_permutations" in line]
    assert lines and all("INFO" in line for line in lines), lines
    assert "Traceback" not in log


def test_health_readiness_openapi_metrics(server):
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert httpx.get(server.url + "/readyz").status_code == 200
    spec = httpx.get(server.url + "/docs.json").json()
    for path in ("/classify", "/tasks/create", "/tasks/list", "/tasks/get", "/tasks/delete", "/tasks/classify"):
        assert path in spec["paths"], path
    ok(post(server, "/tasks/list"))
    metrics = httpx.get(server.url + "/metrics").text
    assert "bentoml_service_request_total" in metrics and "bentoml_service_request_duration_seconds" in metrics


# ---- classify ----

def test_classify_binary(server):
    body = ok(post(server, "/classify", {"examples": examples(ANIMALS, FOODS), "texts": ["a goat", "pasta", "a cow"]}))
    check_predictions(body, 3, {"animal", "food"})
    assert body["task_id"] is None


def test_classify_multiclass_with_options(server):
    for options in ({"n_permutations": 3}, {"multiclass": "ovo", "projection": "support+queries"},
                    {"multiclass": "ovr"}):
        payload = {"examples": examples(ANIMALS, FOODS, TOOLS), "texts": ["a saw", "rice"], "options": options}
        check_predictions(ok(post(server, "/classify", payload)), 2, {"animal", "food", "tool"})


def test_labels_are_returned_verbatim(server):
    odd = ["trailing nul\x00", "  spaced  ", "ünïcødé 🐱", "1"]
    payload = {"examples": [{"text": t, "label": odd[i % 4]} for i, t in enumerate(ANIMALS + FOODS)], "texts": ["x"]}
    check_predictions(ok(post(server, "/classify", payload)), 1, set(odd))


def test_classify_is_deterministic(server):
    payload = {"examples": examples(ANIMALS, FOODS), "texts": ["a lamb"]}
    assert ok(post(server, "/classify", payload))["predictions"] == ok(post(server, "/classify", payload))["predictions"]


def test_planted_task_every_text_gets_its_label(server):
    """Labels whose sorted order is not their order of appearance: a reversed or shifted label
    mapping in the service gives wrong labels here."""
    names = {"animal": "zebra-kind", "food": "apple-kind"}  # sorted: apple-kind first; sent: zebra-kind first
    payload = {"examples": [{"text": t, "label": names["animal"]} for t in ANIMALS] +
                           [{"text": t, "label": names["food"]} for t in FOODS],
               "texts": ["a cow eating grass", "a plate of spaghetti", "a cat chasing a mouse", "a slice of cake"]}
    truth = [names["animal"], names["food"], names["animal"], names["food"]]
    body = ok(post(server, "/classify", payload))
    assert [p["label"] for p in body["predictions"]] == truth
    task_id = ok(post(server, "/tasks/create", {"name": "planted", "examples": payload["examples"]}))["id"]
    body = ok(post(server, "/tasks/classify", {"task_id": task_id, "texts": payload["texts"]}))
    assert [p["label"] for p in body["predictions"]] == truth


def test_truncation_is_reported_per_text(server):
    long_text = "!" * 300  # 300 tokens for minilm (one per '!'), over its max_length of 256
    payload = {"examples": [{"text": long_text, "label": "a"}] + examples(ANIMALS[:1], FOODS[:1]),
               "texts": ["a goat", long_text]}
    payload["examples"][1]["label"] = "a"
    body = ok(post(server, "/classify", payload))
    assert body["truncated_examples"] == [0]
    assert [p["truncated"] for p in body["predictions"]] == [False, True]
    assert body["predictions"][1]["tokens"] == 300 and body["predictions"][0]["tokens"] == 2


# ---- cost: refused before any work, with the limit named ----

def test_over_budget_requests_get_413_naming_the_limit(server):
    wordy = " ".join(["word"] * 58)  # 58 tokens each, 290 characters
    payload = {"examples": [{"text": f"{wordy} {i}", "label": "ab"[i % 2]} for i in range(16)], "texts": [wordy] * 8}
    before = counters(server)
    r = post(server, "/classify", payload)
    assert r.status_code == 413 and "max_embed_tokens=1000" in r.json()["error"], r.text
    # 10 one-vs-one problems, 2 sequences each (names as examples): 320 tokens for a head of one member
    # (tart-base), 2560 for one of 8
    heavy = {"examples": [{"text": f"thing {i}", "label": f"l{i % 5}"} for i in range(15)], "texts": ["x"] * 8,
             "options": {"multiclass": "ovo", "n_permutations": 8}}
    r = post(server, "/classify", heavy)
    assert r.status_code == 413 and "max_head_tokens=300" in r.json()["error"], r.text
    after = counters(server)
    assert after["embedder"]["texts"] == before["embedder"]["texts"]  # refused before embedding anything
    assert after["service"]["refused_over_budget"] - before["service"]["refused_over_budget"] == 2
    heavy["options"]["multiclass"] = "ovr"  # the same request, one-vs-rest, fits
    assert post(server, "/classify", heavy).status_code == 200


def test_large_requests_bypass_the_batcher(server):
    """More than half a batch of texts (16 of embed_max_batch_size=32) goes straight to the embedder
    in chunks; fewer go through the adaptive batcher."""
    def large_calls():
        return counters(server)["embedder"]["large_calls"]

    start = large_calls()
    small = {"examples": examples(ANIMALS, FOODS), "texts": [f"small {i} {time.time()}" for i in range(6)]}  # 16 with the 2 names
    check_predictions(ok(post(server, "/classify", small)), 6, {"animal", "food"})
    assert large_calls() == start
    big = {"examples": [{"text": f"{t} {i}", "label": y} for i, (t, y) in
                        enumerate(zip(ANIMALS * 2 + FOODS * 2, ["animal"] * 8 + ["food"] * 8))],
           "texts": [f"large {i} {time.time()}" for i in range(8)]}  # 24 texts
    check_predictions(ok(post(server, "/classify", big)), 8, {"animal", "food"})
    assert large_calls() == start + 1


# ---- task registry ----

def test_task_lifecycle(server):
    info = ok(post(server, "/tasks/create", {"name": "animals-vs-food", "examples": examples(ANIMALS, FOODS)}))
    task_id = info["id"]
    assert info["labels"] == ["animal", "food"] and info["n_examples"] == 8 and info["embedder"] == "minilm-l6"
    listed = ok(post(server, "/tasks/list"))
    assert task_id in [t["id"] for t in listed["tasks"]] and listed["total"] >= 1
    detail = ok(post(server, "/tasks/get", {"task_id": task_id}))
    assert detail["examples"] == examples(ANIMALS, FOODS) and detail["name"] == "animals-vs-food"

    texts = ["a goat grazing", "a plate of pasta"]
    before = counters(server)
    by_id = ok(post(server, "/tasks/classify", {"task_id": task_id, "texts": texts}))
    after = counters(server)
    assert by_id["task_id"] == task_id
    check_predictions(by_id, 2, {"animal", "food"})
    # only the new texts went to the embedder: the examples came from the store
    assert after["embedder"]["texts"] - before["embedder"]["texts"] == len(texts)
    assert after["service"]["examples_from_cache"] - before["service"]["examples_from_cache"] == 8
    # the same answer as sending the examples along
    inline = ok(post(server, "/classify", {"examples": examples(ANIMALS, FOODS), "texts": texts}))
    for a, b in zip(by_id["predictions"], inline["predictions"]):
        assert a["label"] == b["label"]
        assert all(abs(a["scores"][k] - b["scores"][k]) < 1e-3 for k in a["scores"])

    assert ok(post(server, "/tasks/delete", {"task_id": task_id})) == {"id": task_id, "deleted": True}
    for path, payload in (("/tasks/get", {"task_id": task_id}), ("/tasks/delete", {"task_id": task_id}),
                          ("/tasks/classify", {"task_id": task_id, "texts": ["x"]})):
        r = post(server, path, payload)
        assert r.status_code == 404 and "task_id" in r.json()["error"], r.text
    assert task_id not in [t["id"] for t in ok(post(server, "/tasks/list"))["tasks"]]


def test_failed_requests_store_nothing(server):
    total = ok(post(server, "/tasks/list"))["total"]
    ok(post(server, "/tasks/create", {"name": "unique", "examples": examples(ANIMALS, FOODS)}))
    bad = [{"name": "unique", "examples": examples(ANIMALS, TOOLS)},  # name taken
           {"name": "one-label", "examples": examples(ANIMALS)},
           {"name": "too-long-text", "examples": examples(ANIMALS, FOODS) + [{"text": "x" * 301, "label": "food"}]}]
    codes = [post(server, "/tasks/create", p).status_code for p in bad]
    assert codes == [409, 400, 400]
    assert ok(post(server, "/tasks/list"))["total"] == total + 1
    assert "one-label" not in [t["name"] for t in ok(post(server, "/tasks/list", {"limit": 1000}))["tasks"]]


# ---- validation: every violation is a 4xx whose message names the field (and the limit) ----

TWO = examples(ANIMALS[:1], FOODS[:1])
INVALID = [
    ("/classify", {"examples": examples(ANIMALS * 3, FOODS * 3), "texts": ["x"]}, 400, ["examples", "at most 16"]),
    ("/classify", {"examples": TWO, "texts": ["x"] * 9}, 400, ["texts", "at most 8"]),
    ("/classify", {"examples": TWO, "texts": ["x" * 301]}, 400, ["texts[0]", "at most 300 characters"]),
    ("/classify", {"examples": [{"text": "x" * 301, "label": "a"}, TWO[1]], "texts": ["x"]}, 400,
     ["examples[0].text", "300"]),
    ("/classify", {"examples": examples(ANIMALS), "texts": ["x"]}, 400, ["examples", "at least 2 distinct labels"]),
    ("/classify", {"examples": [{"text": str(i), "label": f"l{i}"} for i in range(6)], "texts": ["x"]}, 400,
     ["examples", "at most 5 distinct labels"]),
    ("/classify", {"examples": TWO, "texts": []}, 400, ["texts", "at least 1"]),
    ("/classify", {"examples": TWO, "texts": ["   "]}, 400, ["texts[0]", "non-whitespace"]),
    ("/classify", {"examples": TWO, "texts": "a single string"}, 400, ["texts", "valid array"]),
    ("/classify", {"examples": [{"text": "a", "label": 1}, TWO[1]], "texts": ["x"]}, 400, ["examples[0].label", "string"]),
    ("/classify", {"examples": TWO}, 400, ["texts", "required"]),
    ("/classify", {"examples": TWO, "texts": ["x"], "store_path": "/tmp/x"}, 400, ["store_path", "not permitted"]),
    ("/classify", {"examples": TWO, "texts": ["x"], "options": {"n_permutations": 99}}, 400,
     ["options.n_permutations", "less than or equal to 8"]),
    ("/classify", {"examples": TWO, "texts": ["x"], "options": {"multiclass": "all"}}, 400,
     ["options.multiclass", "'auto', 'ovr' or 'ovo'"]),
    ("/classify", {"examples": TWO, "texts": ["x" * 290] * 300}, 413, ["max_body_bytes=60000"]),
    ("/tasks/create", {"name": "n" * 41, "examples": TWO}, 400, ["name", "at most 40"]),
    ("/tasks/get", {"task_id": "../../etc/passwd"}, 400, ["task_id", "pattern"]),
    ("/tasks/classify", {"task_id": "0" * 32, "texts": ["x"]}, 404, ["task_id", "no task"]),
    ("/tasks/list", {"limit": 0}, 400, ["limit", "greater than or equal to 1"]),
    # strict: no type is coerced
    ("/classify", {"examples": TWO, "texts": ["x"], "options": {"n_permutations": True}}, 400,
     ["options.n_permutations", "valid integer"]),
    ("/classify", {"examples": TWO, "texts": ["x"], "options": {"n_permutations": "4"}}, 400,
     ["options.n_permutations", "valid integer"]),
    ("/tasks/list", {"offset": False}, 400, ["offset", "valid integer"]),
    ("/tasks/list", {"limit": 2.0}, 400, ["limit", "valid integer"]),
]


@pytest.mark.parametrize("path,payload,status,needles", INVALID, ids=[f"{p}-{n[0]}-{s}" for p, _, s, n in INVALID])
def test_invalid_requests_get_4xx_naming_the_field(server, path, payload, status, needles):
    r = post(server, path, payload)
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"]  # one error shape
    message = r.json()["error"]
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.mark.parametrize("body,content_type", [(b"not json", "application/json"), (b"[1, 2]", "application/json"),
                                               (b"", "application/json"), (b"\xff\xfe", "application/json"),
                                               (b"x", "text/plain"), (b"x", "application/vnd.bentoml+pickle"),
                                               (b"a=1", "application/x-www-form-urlencoded"),
                                               (b"{}", "multipart/form-data; boundary=x")])
def test_malformed_bodies_get_4xx(server, body, content_type):
    r = httpx.post(server.url + "/classify", content=body, headers={"content-type": content_type}, timeout=30)
    assert 400 <= r.status_code < 500, r.text
    assert list(r.json()) == ["error"] and r.json()["error"]


@pytest.mark.parametrize("raw", [b"GARBAGE\r\n\r\n",
                                 b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
                                 b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}"],
                         ids=["request-line", "content-length-text", "content-length-negative"])
def test_unparsable_http_gets_a_json_400(server, raw):
    """Requests the HTTP server (uvicorn) refuses before any middleware runs still get the one error shape."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after a 400
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    assert b"content-type: application/json" in head.lower(), answer
    assert "malformed HTTP request" in json.loads(body)["error"]


def test_slow_bodies_do_not_starve_other_clients(server):
    """64 clients (max_concurrency) send their headers and one byte of a 100-byte body, then nothing. A
    normal request sent meanwhile is answered (<= 5 s), while they still wait; each of them gets a JSON 408
    after body_timeout_s (5 s here). Before the fix every slot was theirs: the normal request got 429."""
    n = 64

    async def scenario():
        slow = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(n)]
        for _, writer in slow:
            writer.write(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{")
            await writer.drain()
        async def answer(reader):  # the whole answer (the server closes the connection), and when it came
            return await reader.read(), time.perf_counter()

        answered = [asyncio.ensure_future(answer(reader)) for reader, _ in slow]
        await asyncio.sleep(0.5)  # they all reached the server
        t0 = time.perf_counter()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            normal = await client.post("/classify", json={"examples": examples(ANIMALS, FOODS), "texts": ["a goat"]})
        done = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*answered), 30)
        for _, writer in slow:
            writer.close()
        return normal, done - t0, sum(t > done for _, t in results), [a for a, _ in results]

    normal, seconds, pending, answers = asyncio.run(scenario())
    print(f"normal request with {n} slow bodies pending: {normal.status_code} in {seconds:.2f} s")
    assert normal.status_code == 200, normal.text
    assert seconds <= 5, f"a normal request took {seconds:.1f} s behind {n} slow bodies"
    assert pending == n  # answered while every slow client still waited for its 408
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer
        assert "body_timeout_s=5" in json.loads(body)["error"]


# ---- batching across concurrent requests ----

def test_concurrent_requests_share_embedder_batches(server):
    n = 16

    async def burst():
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
            # open the n connections first, so the burst below reaches the server at once
            await asyncio.gather(*(client.post("/tasks/list", json={}) for _ in range(n)))
            payloads = [{"examples": examples(ANIMALS, FOODS),  # new texts: the embedder's cache can't help
                         "texts": [f"burst {i} text {j} {time.time()}" for j in range(6)]} for i in range(n)]
            return await asyncio.gather(*(client.post("/classify", json=p) for p in payloads))

    before = counters(server)["embedder"]
    responses = asyncio.run(burst())
    after = counters(server)["embedder"]
    assert [r.status_code for r in responses] == [200] * n
    batches = after["batches"] - before["batches"]
    assert after["texts"] - before["texts"] == n * 16  # 8 examples, 6 texts and the 2 label names: the batcher's
    assert batches < n, f"{n} concurrent requests ran as {batches} embedder batches"


# ---- persistence across restarts, then overload (the server restarts with a low concurrency limit) ----

# Texts no other test sends, without the labels' names (the task's creation left those in the embedder's
# cache before a restart, not after): each snapshot embeds exactly these texts in one call of their own.
# Under the default backend MiniLM's short texts run in int8, whose vectors follow the batch they were
# made in (scores moved by up to 0.09 on these small tasks when the names joined the call after a restart).
SNAPSHOT_TEXTS = ["a mountain goat on the ridge", "a rusty hand saw", "a pot of lentil soup"]


def snapshot(server, ids):
    state = {"tasks": ok(post(server, "/tasks/list", {"limit": 1000}))["tasks"]}
    for task_id in ids:
        state[task_id] = {
            "detail": ok(post(server, "/tasks/get", {"task_id": task_id})),
            "answer": ok(post(server, "/tasks/classify", {"task_id": task_id, "texts": SNAPSHOT_TEXTS,
                                                           "options": {"label_names": False}})),
        }
    return state


def same_state(a, b):
    """Tasks identical; answers identical up to float noise (the texts are embedded anew, maybe
    batched with others, so the last bits of their vectors may differ)."""
    assert a["tasks"] == b["tasks"]
    for key in a.keys() - {"tasks"}:
        assert a[key]["detail"] == b[key]["detail"]
        pa, pb = a[key]["answer"]["predictions"], b[key]["answer"]["predictions"]
        assert [p["label"] for p in pa] == [p["label"] for p in pb]
        for x, y in zip(pa, pb):
            assert x["scores"].keys() == y["scores"].keys()
            assert all(abs(x["scores"][k] - y["scores"][k]) < 1e-3 for k in x["scores"]), (x, y)
    return True


def persisted_tasks(server):
    ids = [ok(post(server, "/tasks/create", {"name": f"persist-{i}-{time.time()}",
                                             "examples": examples(ANIMALS, FOODS, TOOLS[:i + 1])}))["id"]
           for i in range(2)]
    return ids, snapshot(server, ids)


def test_workers_die_with_the_killed_server_and_tasks_survive(server):
    """A crash of `tart serve` itself (SIGKILL to it alone, no shutdown code anywhere): its workers
    end by themselves within 2 s, a new server binds the same port at once, and the tasks are all there. The
    restart also sets the low concurrency limit the overload test needs."""
    ids, before = persisted_tasks(server)
    port = server.port
    survivors = server.restart(signal.SIGKILL, leader_only=True, timeout=2, env={"TART_MAX_CONCURRENCY": "2"})
    assert survivors == [], f"workers {survivors} outlived the killed server by more than 2 s: {server.survivor_commands}"
    assert server.port == port
    assert same_state(snapshot(server, ids), before)


@pytest.mark.slow
def test_tasks_survive_sigterm(server):
    ids, before = persisted_tasks(server)
    server.restart(signal.SIGTERM, env={"TART_MAX_CONCURRENCY": "2"})  # a clean stop
    assert same_state(snapshot(server, ids), before)


def test_overload_gets_429_not_a_hang(server):
    if server.env.get("TART_MAX_CONCURRENCY") != "2":
        server.restart(signal.SIGTERM, env={"TART_MAX_CONCURRENCY": "2"})
    n = 24

    async def burst():
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
            await asyncio.gather(*(client.get("/healthz") for _ in range(n)))  # open the connections first
            payloads = [{"examples": examples(ANIMALS, FOODS, TOOLS),  # new texts each: none is instant
                         "texts": [f"overload {i} text {j} {time.time()}" for j in range(8)]} for i in range(n)]
            return await asyncio.gather(*(client.post("/classify", json=p) for p in payloads))

    responses = asyncio.run(burst())
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}, codes
    assert 429 in codes and 200 in codes, codes
    for r in responses:
        if r.status_code == 429:
            assert r.headers["retry-after"] == "1" and "max_concurrency=2" in r.json()["error"]
    assert httpx.get(server.url + "/readyz").status_code == 200


# ---- the documents' examples run, in order, on one fresh store ----

def _blocks(path: str, section: str, language: str) -> list[str]:
    """The fenced `language` blocks under the heading `section` of a Markdown file, in order."""
    import re
    from pathlib import Path

    text = Path(__file__).resolve().parent.parent.joinpath(path).read_text()
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    return re.findall(rf"```{language}\n(.*?)```", text[start : end if end > 0 else None], re.S)


def _json_bodies(text: str) -> list[dict]:
    """The JSON objects in curl's output (bodies are printed back to back, between other lines)."""
    decoder, bodies, i = json.JSONDecoder(), [], text.find("{")
    while i >= 0:
        try:
            body, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            end = i + 1
        else:
            bodies.append(body)
        i = text.find("{", end)
    return bodies


def test_the_documents_serving_examples_run_in_order(server):
    """README's Serving examples, then docs/serving.md's curl and Python client sections: no error, the
    answers they show (a horse is an animal, cheese is food), and registering their tasks twice in a row
    does not collide (each task name is new, the docs delete theirs)."""
    import subprocess
    import sys

    shell = _blocks("README.md", "## Serving", "bash")[:1] + _blocks("docs/serving.md", "## curl", "bash")
    python = _blocks("README.md", "## Serving", "python")[:1] + _blocks("docs/serving.md", "## Python client", "python")
    assert len(shell) == 2 and len(python) == 2
    for script in shell:
        script = script.replace("http://127.0.0.1:3000", server.url)
        out = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "PATH": os.path.dirname(sys.executable) + ":" + os.environ["PATH"]})
        assert out.returncode == 0, out.stderr
        assert '"error"' not in out.stdout, out.stdout
        labels = [p["label"] for body in _json_bodies(out.stdout) for p in body.get("predictions", [])]
        assert labels[:2] == ["animal", "food"], out.stdout  # "a horse in the field", "cheese and crackers"
    for script in python:
        out = subprocess.run([sys.executable, "-c", script.replace("http://127.0.0.1:3000", server.url)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    assert "['animal', 'food']" in out.stdout  # the docs' client prints the labels of "a horse", "pasta"
