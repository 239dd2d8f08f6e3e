"""One shape for every error: `{"error": "..."}` from the app, the gate, BentoML and the HTTP server.

`json_http_errors()` makes the HTTP server itself (uvicorn, below every middleware) answer a request it
cannot parse (a garbage request line, a bad Content-Length) with a JSON 400 instead of text/plain, and a
request it had to cancel (a clean stop's `shutdown_timeout_s` passed) with a JSON 503 "the server is
shutting down" (a JSON 500 if the app failed otherwise before answering).

`ErrorShape` rewrites every error response (4xx and 5xx, from BentoML too) as `{"error": "..."}`,
adds `Retry-After` to 429 and 503, and logs each 4xx at INFO in one line (method, path, status,
message); 5xx stay BentoML's ERROR logs with their traceback.
"""
from __future__ import annotations

import json
import logging

from tart.serving import lifecycle

logger = logging.getLogger("bentoml.tart")  # under BentoML's logger: its handlers, its format


def error_body(message: str, task_id: str | None = None) -> bytes:
    return json.dumps({"error": message} | ({"task_id": task_id} if task_id else {})).encode()


async def send_json(send, status: int, body: bytes, extra_headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *extra_headers]})
    await send({"type": "http.response.body", "body": body})
async def send_error(send, status: int, message: str, extra_headers=()):
    await send_json(send, status, error_body(message), extra_headers)


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
            body = error_body(text, task_id if isinstance(task_id, str) else None)
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

        body = error_body(message.format(msg.rstrip(".")))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()

    def raw_400(self, msg: str) -> None:
        body = error_body(message.format(msg.rstrip(".")))
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        self.transport.close()

    async def json_500(self) -> None:  # a request cycle's answer when the app raised before answering
        if lifecycle.stopping():  # cancelled by a clean stop (shutdown_timeout_s passed): retry elsewhere
            status, retry = 503, [(b"retry-after", b"1")]
            body = error_body("the server is shutting down: this request was still running after "
                               "shutdown_timeout_s and was cancelled; retry it on a running server")
        else:
            status, retry = 500, []
            body = error_body("the request did not finish: it failed; see the server log")
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
