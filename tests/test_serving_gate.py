"""The ASGI middleware (`tart.serving.gate`, `tart.serving.errors`) on a small Starlette app: sizes, content types, slow bodies,
the concurrency gate, API keys, one error shape."""
from __future__ import annotations


def test_readable_errors():
    from tart.serving.errors import readable

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

    from tart.serving.gate import RequestGate

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


def test_request_gate_api_keys():
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from tart.serving.errors import ErrorShape
    from tart.serving.gate import RequestGate

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

    from tart.serving.errors import ErrorShape

    async def busy(request):
        return JSONResponse([{"error": "process is overloaded"}], status_code=503)

    async def plain(request):
        return PlainTextResponse("Method Not Allowed", status_code=405)

    client = TestClient(ErrorShape(Starlette(routes=[Route("/busy", busy), Route("/plain", plain)])))
    r = client.get("/busy")
    assert r.status_code == 503 and r.json() == {"error": "process is overloaded"} and r.headers["retry-after"] == "1"
    r = client.get("/plain")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}


def test_slow_bodies_get_408_and_hold_no_slot():
    """A client that sends one byte of its body and then nothing holds no request slot (max_concurrency=1
    here: a normal request is answered meanwhile), and gets 408 (JSON, connection closed) after body_timeout_s."""
    import asyncio
    import json

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tart.serving.gate import RequestGate

    async def echo(request):
        return JSONResponse({"n": len(await request.body())})

    gate = RequestGate(Starlette(routes=[Route("/", echo, methods=["POST"])]), max_body_bytes=100, max_concurrency=1,
                       body_timeout_s=0.5)
    scope = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
             "scheme": "http", "http_version": "1.1", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")]}

    def client(parts):
        sent, parts = [], list(parts)

        async def receive():
            if parts:
                body = parts.pop(0)
                return {"type": "http.request", "body": body, "more_body": bool(parts) or body == b"{"}
            await asyncio.sleep(3600)  # the rest of the body never comes

        async def send(message):
            sent.append(message)
        return receive, send, sent

    async def scenario():
        slow_receive, slow_send, slow_sent = client([b"{"])
        slow = asyncio.ensure_future(gate(dict(scope), slow_receive, slow_send))
        await asyncio.sleep(0.1)  # the slow one is waiting for its body
        receive, send, sent = client([b"{}"])
        await asyncio.wait_for(gate({**scope, "headers": [(b"content-type", b"application/json")]}, receive, send), 5)
        normal_status = sent[0]["status"]
        await asyncio.wait_for(slow, 5)
        return normal_status, slow_sent

    normal_status, slow_sent = asyncio.run(scenario())
    assert normal_status == 200
    start, body = slow_sent
    assert start["status"] == 408 and (b"connection", b"close") in start["headers"]
    assert "body_timeout_s=0.5" in json.loads(body["body"])["error"]
