"""ASGI middleware: a gate on request bodies (JSON only, size cap), and readable 4xx errors.

BentoML has no body size setting, and it parses form and multipart bodies with a parser that fails
with a 500 on malformed input; this API takes JSON only. So, before the app sees a request:
- a Content-Type other than JSON gets 415 (none at all is read as JSON, as BentoML does);
- the body is read up to the limit: a Content-Length over it is refused at once, a chunked body as
  soon as it passes it, with 413 and a message naming the limit. A body within it is replayed as is.
"""
from __future__ import annotations

import json


async def _send_error(send, status: int, message: str):
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media in ("", "application/json") or (media.startswith("application/") and media.endswith("+json"))


class RequestGate:
    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def _refuse(self, send, size_text: str):
        await _send_error(send, 413, f"request body is {size_text}; the limit is "
                                     f"max_body_bytes={self.max_body_bytes} bytes")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
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
                return await self._refuse(send, f"{declared} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return await self._refuse(send, f"over {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect as usual

        await self.app(scope, replay, send)


def _field(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def readable(payload):
    """BentoML's 4xx bodies, made uniform: {"error": "field: message; ...", "detail": [...]}."""
    if isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], dict):
        payload = payload[0]  # BentoML wraps some errors in a one-element list
    if isinstance(payload, dict) and isinstance(payload.get("detail"), list):
        parts = [f"{_field(d.get('loc', ()))}: {d.get('msg', '')}" for d in payload["detail"] if isinstance(d, dict)]
        if parts:
            payload = {**payload, "error": "; ".join(parts)}
    return payload


class ReadableErrors:
    """Rewrites 4xx JSON error bodies with `readable` so every error message names its field."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, chunks = None, []

        async def capture(message):
            nonlocal start
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                start = message
                return
            if start is None:
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            try:
                body = json.dumps(readable(json.loads(body))).encode()
            except ValueError:
                pass  # not JSON: pass it on unchanged
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)
