"""ASGI middleware in front of BentoML: the request gate, and one shape for every error.

`RequestGate`, before the app sees a request:
- API keys: when the server has keys (settings `api_keys`), every request but the health probes must
  send one (`Authorization: Bearer KEY` or `X-API-Key: KEY`), else 401;
- GET /docs.json answers the document of `serving.openapi` (BentoML's, made true);
- an API route called with another method than POST gets 405 (before its body is looked at);
- a Content-Type other than JSON gets 415 (none at all is read as JSON, as BentoML does); BentoML
  parses form and multipart bodies with a parser that fails with a 500 on malformed input;
- the body is read up to `max_body_bytes`: a Content-Length over it is refused at once, a chunked
  body as soon as it passes it, with 413 and a message naming the limit;
- the whole body must arrive within `body_timeout_s`, else 408 (and the connection is closed): a
  client that sends its body slowly, or never, holds a connection but no request slot;
- the body is validated with the route's request model (`requests`, as the service declares its
  routes; strict: no coercion): an invalid one gets 400 here, so BentoML never logs a traceback for
  it; a valid one is left in the request's scope, where BentoML takes it instead of parsing the body
  again (`schemas._Request`);
- only then does the request take a slot: more than `max_concurrency` API requests in flight get 429
  (with Retry-After, from `ErrorShape`). A valid body is replayed to the app.

`json_http_errors()` makes the HTTP server itself (uvicorn, below every middleware) answer a request it
cannot parse (a garbage request line, a bad Content-Length) with a JSON 400 instead of text/plain, and a
request it had to cancel (a clean stop's `shutdown_timeout_s` passed) with a JSON 503 "the server is
shutting down" (a JSON 500 if the app failed otherwise before answering).

`ErrorShape` rewrites every error response (4xx and 5xx, from BentoML too) as `{"error": "..."}`,
adds `Retry-After` to 429 and 503, and logs each 4xx at INFO in one line (method, path, status,
message); 5xx stay BentoML's ERROR logs with their traceback.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging

from pydantic import ValidationError

from tart.serving import lifecycle

logger = logging.getLogger("bentoml.tart")  # under BentoML's logger: its handlers, its format

PROBES = {"/healthz", "/livez", "/readyz"}  # never behind a key: orchestrators call them


def _error_body(message: str, task_id: str | None = None) -> bytes:
    return json.dumps({"error": message} | ({"task_id": task_id} if task_id else {})).encode()


async def _send_json(send, status: int, body: bytes, extra_headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra_headers]})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send, status: int, message: str, extra_headers=()):
    await _send_json(send, status, _error_body(message), extra_headers)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media in ("", "application/json") or (media.startswith("application/") and media.endswith("+json"))


def _field(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _message(error: dict) -> str:
    if error.get("type") == "string_pattern_mismatch" and "'\\S'" in error.get("msg", ""):
        return "must contain a non-whitespace character"  # the schemas' pattern \S, said plainly
    return error.get("msg", "").removeprefix("Value error, ")  # our validators' own words, without pydantic's tag


def validation_message(errors: list[dict]) -> str:
    """pydantic's errors as one line: `field: message; field: message`."""
    return "; ".join(f"{_field(e.get('loc', ()))}: {_message(e)}" for e in errors) or "invalid request"


def readable(payload) -> str:
    """Any error body (BentoML's dicts, lists, plain text) as one message."""
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]  # BentoML wraps some errors in a one-element list
    if isinstance(payload, dict):
        if isinstance(payload.get("detail"), list) and all(isinstance(d, dict) for d in payload["detail"]):
            return validation_message(payload["detail"])
        for key in ("error", "detail", "message"):
            if isinstance(payload.get(key), str):
                return payload[key]
    return payload.strip() if isinstance(payload, str) and payload.strip() else json.dumps(payload)


class RequestGate:
    def __init__(self, app, max_body_bytes: int, api_keys: frozenset[str] = frozenset(), openapi=None,
                 max_concurrency: int | None = None, body_timeout_s: float = 10.0, requests=None):
        self.app = app
        self.requests = requests or {}  # API route -> its request model (the service's declarations)
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s  # the whole body must arrive within this, else 408
        self.max_concurrency = max_concurrency  # API requests in flight at most; more get 429 + Retry-After
        self.in_flight = 0
        self.api_keys = api_keys
        self.openapi = openapi  # () -> the document, built on first use
        self._openapi_body: bytes | None = None

    def _key_ok(self, headers: dict) -> bool:
        sent = headers.get(b"x-api-key", b"").decode("latin-1").strip()
        auth = headers.get(b"authorization", b"").decode("latin-1").strip()
        if auth.lower().startswith("bearer "):
            sent = sent or auth[7:].strip()
        return bool(sent) and any(hmac.compare_digest(sent.encode(), k.encode()) for k in self.api_keys)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope.get("path", ""), scope.get("method", "")
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        if self.api_keys and path not in PROBES and not self._key_ok(headers):
            return await _send_error(send, 401, "a valid API key is required: send 'Authorization: Bearer KEY' "
                                                "or 'X-API-Key: KEY'", [(b"www-authenticate", b"Bearer")])
        if path == "/docs.json" and method == "GET" and self.openapi is not None:
            if self._openapi_body is None:
                try:
                    self._openapi_body = json.dumps(self.openapi()).encode()
                except Exception:
                    logger.exception("could not build the OpenAPI document")
                    return await _send_error(send, 500, "could not build the OpenAPI document; see the server log")
            return await _send_json(send, 200, self._openapi_body)
        from tart.serving.schemas import VALIDATED

        if path in self.requests and method != "POST":
            return await _send_error(send, 405, f"{path} takes POST only, not {method}", [(b"allow", b"POST")])
        if method in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if not _is_json(content_type):
            return await _send_error(send, 415, f"Content-Type {content_type!r} is not supported: send JSON "
                                                "with 'Content-Type: application/json'")
        if b"content-length" in headers:
            try:
                declared = int(headers[b"content-length"])
            except ValueError:
                declared = -1
            if declared > self.max_body_bytes:
                return await self._too_large(send, f"{declared} bytes")
        # the body first, under a deadline: a request takes a slot only once it has all of it
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = await self._read_body(receive, send)
        except TimeoutError:
            return await _send_error(send, 408, f"the request body did not arrive within body_timeout_s="
                                                f"{self.body_timeout_s:g} s", [(b"connection", b"close")])
        if body is None:  # answered (413) or the client left
            return
        try:
            request = self._validated(path, body)
        except ValidationError as err:
            problem = validation_message(err.errors(include_url=False, include_context=False, include_input=False))
            return await _send_error(send, 400, problem)
        if request is not None:  # BentoML takes it from here (schemas._Request): validated once
            scope = {**scope, VALIDATED: request}
        if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
            return await _send_error(send, 429, f"too many requests in flight (max_concurrency="
                                                f"{self.max_concurrency}): retry later")
        self.in_flight += 1
        try:
            await _run_until_disconnect(self.app, scope, body, receive, send)
        finally:
            self.in_flight -= 1

    async def _read_body(self, receive, send) -> bytes | None:
        """The whole body, or None when the client left or the body passed max_body_bytes (413 sent)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send, f"over {self.max_body_bytes} bytes")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send, size_text: str):
        await _send_error(send, 413, f"request body is {size_text}; the limit is "
                                     f"max_body_bytes={self.max_body_bytes} bytes")

    def _validated(self, path: str, body: bytes):
        """The route's request model built from the body (raises ValidationError), or None off the API."""
        model = self.requests.get(path)
        return model.model_validate_json(body if body.strip() else b"{}") if model else None


async def _run_until_disconnect(app, scope, body: bytes, receive, send):
    """Run the app on the (already read) body; if the client goes away first, cancel it, so the
    request's work stops (serving/headpool.py stops its head job) instead of running for no one."""
    disconnected = asyncio.Event()
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await disconnected.wait()  # the watcher below is the only reader of the real `receive`
        return {"type": "http.disconnect"}

    async def watch():
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    task = asyncio.ensure_future(app(scope, replay, send))
    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # e.g. BentoML's timeout: pass it on to the app
        task.cancel()
        watcher.cancel()
        raise
    if task.done():
        watcher.cancel()
        return task.result()
    task.cancel()
    logger.info("%s %s: the client disconnected; its request was cancelled", scope.get("method"), scope.get("path"))
    try:
        await task
    except asyncio.CancelledError:
        pass


class ErrorShape:
    """Every error response as {"error": "..."} (+ "task_id" on a 409 name clash); Retry-After on 429/503;
    4xx logged at INFO, one line."""

    def __init__(self, app, retry_after_s: int = 1):
        self.app = app
        self.retry_after = str(retry_after_s).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, chunks = None, []

        async def capture(message):
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None:
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            raw = b"".join(chunks)
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = raw.decode("utf-8", "replace")
            text = readable(payload)
            # the one extra field the error schema has: a taken name's task id (409 from /tasks/create)
            task_id = payload.get("task_id") if isinstance(payload, dict) and start["status"] == 409 else None
            body = _error_body(text, task_id if isinstance(task_id, str) else None)
            status = start["status"]
            headers = [(k, v) for k, v in start.get("headers", [])
                       if k.lower() not in (b"content-length", b"content-type")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if status in (429, 503) and not any(k.lower() == b"retry-after" for k, _ in headers):
                headers.append((b"retry-after", self.retry_after))
            if status < 500:
                logger.info("%s %s -> %d: %s", scope.get("method"), scope.get("path"), status,
                            text[:300].replace("\n", " "))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def json_http_errors() -> None:
    """uvicorn answers a request it cannot parse itself, with a text/plain 400, before any ASGI app runs,
    and one whose app raised before answering (e.g. cancelled at shutdown) with a text/plain 500: replace
    both by the API's one shape (`{"error": ...}`), for its h11 and httptools protocols."""
    message = "malformed HTTP request: {}; send HTTP/1.1 with a valid request line and headers"

    def h11_400(self, msg: str) -> None:
        import h11

        body = _error_body(message.format(msg.rstrip(".")))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()

    def raw_400(self, msg: str) -> None:
        body = _error_body(message.format(msg.rstrip(".")))
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        self.transport.close()

    async def json_500(self) -> None:  # a request cycle's answer when the app raised before answering
        if lifecycle.stopping():  # cancelled by a clean stop (shutdown_timeout_s passed): retry elsewhere
            status, retry = 503, [(b"retry-after", b"1")]
            body = _error_body("the server is shutting down: this request was still running after "
                               "shutdown_timeout_s and was cancelled; retry it on a running server")
        else:
            status, retry = 500, []
            body = _error_body("the request did not finish: it failed; see the server log")
        await self.send({"type": "http.response.start", "status": status,
                         "headers": [(b"content-type", b"application/json"), *retry,
                                     (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    from uvicorn.protocols.http import h11_impl

    h11_impl.H11Protocol.send_400_response = h11_400
    h11_impl.RequestResponseCycle.send_500_response = json_500
    try:
        from uvicorn.protocols.http import httptools_impl
    except ImportError:  # httptools is not installed: uvicorn uses h11
        return
    httptools_impl.HttpToolsProtocol.send_400_response = raw_400
    httptools_impl.RequestResponseCycle.send_500_response = json_500
