"""The outermost layer of every request: request id, body size and time limits, metrics, access log,
last-resort 500.

A pure ASGI middleware (no per-request task, unlike Starlette's BaseHTTPMiddleware), so it costs
microseconds. The body limit is enforced before anything parses the body: a Content-Length over the
limit is refused unread, and a chunked body is refused as soon as it passes the limit. A body that
has not arrived `body_timeout_seconds` after the headers (a Content-Length longer than what the
client sends hung the request forever) is answered 408 and its connection closed. Requests are
counted and logged by route template (`/v1/classify`), or `unmatched`: never by the path sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body, log_refusal, request_id_var
from .metrics import Metrics

log = logging.getLogger("service.access")

_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}
UNMATCHED = "unmatched"


class _BodyTooLarge(Exception):
    pass


class _BodyTooSlow(Exception):
    def __init__(self, received: int) -> None:
        self.received = received


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, body_timeout_seconds: float) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _INCOMING_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if scope["method"] in _BODY_METHODS:
                try:
                    body = await self._read_body(scope, receive)
                except _BodyTooLarge:
                    await _refuse(
                        send_with_id,
                        413,
                        "body_too_large",
                        f"the request body is over the limit of {self.max_body_bytes} bytes",
                        self.max_body_bytes,
                    )
                    return
                except _BodyTooSlow as slow:
                    await _refuse(
                        send_with_id,
                        408,
                        "body_timeout",
                        f"the request body did not arrive within {self.body_timeout_seconds:g} s "
                        f"({slow.received} bytes came); send it whole, with a Content-Length that matches it",
                        self.body_timeout_seconds,
                        close=True,
                    )
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected error; answered 500")
            if not response_started:
                await _send_json(
                    send_with_id, 500, error_body("internal_error", "unexpected error; the log has the details")
                )
        finally:
            route = _route(scope)
            method = scope.get("method", "")
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                milliseconds = round(elapsed * 1000, 1)
                fields = {"method": method, "route": route, "status": status, "duration_ms": milliseconds}
                log.info("%s %s %d %.1fms", method, route, status, milliseconds, extra=fields)
            request_id_var.reset(token)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body; `_BodyTooLarge` as soon as it is known to be over the limit, `_BodyTooSlow` when it has
        not arrived within the body timeout."""
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _BodyTooLarge
        deadline = asyncio.get_running_loop().time() + self.body_timeout_seconds
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyTooSlow(size) from None
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _route(scope: Scope) -> str:
    """The template of the route that answered (`/v1/classify`), or of the route the path would have reached
    when this middleware answered first; `unmatched` for any other path, so that paths sent never become
    metric labels."""
    route = scope.get("route")
    if route is None:
        app = scope.get("app")
        for candidate in getattr(app, "routes", ()):
            if candidate.matches(scope)[0] is not Match.NONE:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(send: Send, status: int, code: str, message: str, limit: int | float, close: bool = False) -> None:
    log_refusal(status, code, "body")
    await _send_json(send, status, error_body(code, message, "body", limit), close=close)


async def _send_json(send: Send, status: int, body: dict[str, Any], close: bool = False) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:  # the rest of the body may still come: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
