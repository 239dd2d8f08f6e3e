"""The request gate: ASGI middleware in front of BentoML that checks a request before the app sees it.

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
"""
from __future__ import annotations

import asyncio
import hmac
import json

from pydantic import ValidationError

from tart.serving.errors import logger, send_error, send_json, validation_message

PROBES = {"/healthz", "/livez", "/readyz"}  # never behind a key: orchestrators call them


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media in ("", "application/json") or (media.startswith("application/") and media.endswith("+json"))


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
            return await send_error(send, 401, "a valid API key is required: send 'Authorization: Bearer KEY' "
                                                "or 'X-API-Key: KEY'", [(b"www-authenticate", b"Bearer")])
        if path == "/docs.json" and method == "GET" and self.openapi is not None:
            if self._openapi_body is None:
                try:
                    self._openapi_body = json.dumps(self.openapi()).encode()
                except Exception:
                    logger.exception("could not build the OpenAPI document")
                    return await send_error(send, 500, "could not build the OpenAPI document; see the server log")
            return await send_json(send, 200, self._openapi_body)
        from tart.serving.schemas import VALIDATED

        if path in self.requests and method != "POST":
            return await send_error(send, 405, f"{path} takes POST only, not {method}", [(b"allow", b"POST")])
        if method in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if not _is_json(content_type):
            return await send_error(send, 415, f"Content-Type {content_type!r} is not supported: send JSON "
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
            return await send_error(send, 408, f"the request body did not arrive within body_timeout_s="
                                                f"{self.body_timeout_s:g} s", [(b"connection", b"close")])
        if body is None:  # answered (413) or the client left
            return
        try:
            request = self._validated(path, body)
        except ValidationError as err:
            problem = validation_message(err.errors(include_url=False, include_context=False, include_input=False))
            return await send_error(send, 400, problem)
        if request is not None:  # BentoML takes it from here (schemas._Request): validated once
            scope = {**scope, VALIDATED: request}
        if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
            return await send_error(send, 429, f"too many requests in flight (max_concurrency="
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
        await send_error(send, 413, f"request body is {size_text}; the limit is "
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
