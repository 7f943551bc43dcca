"""The two ASGI layers around the app, written raw because they run on every request.

`ObserveMiddleware` (outermost but for `fastpath`) stamps the start time and records each response in the Prometheus
metrics; `GuardMiddleware` enforces the body size limit (413) and the access key (401) before any
parsing or validation, so an unauthenticated client never reaches the schema.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from lib.serving.errors import JSONResponse, error
from lib.serving.prometheus import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED = frozenset({"/predict", "/invocations", "/explain", "/feedback", "/admin/reload"})
T0_KEY = "bank.t0"


def header_key(scope: Scope) -> bytes | None:
    """The access key of an `Authorization: Bearer` header; b"" for another scheme, None without the header."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else b""
    return None


def payload_key(data: Any) -> bytes | None:
    """The access key of a parsed JSON body's `accessKey` field (the CML payload); None without one."""
    key = data.get("accessKey") if isinstance(data, dict) else None
    return key.encode("utf-8", "surrogatepass") if isinstance(key, str) else None


def key_matches(given: bytes | None, key: bytes) -> bool:
    """Whether a request's key is the server's (in constant time)."""
    return given is not None and secrets.compare_digest(given, key)


class ObserveMiddleware:
    """Outermost layer: stamps the start time and records every response in the metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and count its response by route, status and served version."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = scope.setdefault(T0_KEY, time.perf_counter())  # the fast path's, when it handed the request on
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.observe(scope["path"], status, time.perf_counter() - t0)
            await send(message)

        await self.app(scope, receive, send_wrapper)


class GuardMiddleware:
    """Body size limit (413) and access-key check (401) before any parsing or validation."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, access_key: str | None, key_hint: str) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.key = access_key.encode() if access_key else None
        self.key_hint = key_hint

    def _too_large(self, size: int | None = None) -> JSONResponse:
        got = f" ({size:,} bytes)" if size is not None else ""
        return error(413, f"request body too large{got}: the limit is {self.max_body:,} bytes (SERVE_MAX_BODY_BYTES)")

    def _unauthorized(self) -> JSONResponse:
        return error(
            401,
            "missing or invalid access key: send 'Authorization: Bearer <key>' or \"accessKey\" in the body "
            f"(the key is in {self.key_hint})",
            **{"WWW-Authenticate": "Bearer"},
        )

    def _body_key(self, body: bytes) -> bytes | None:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None
        return payload_key(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse oversized bodies (413) and, on protected paths, a missing or wrong key (401)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await error(400, "invalid Content-Length header")(scope, receive, send)
                    return
                if declared > self.max_body:
                    await self._too_large(declared)(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        if scope["method"] in ("POST", "PUT", "PATCH"):
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    await self._too_large()(scope, receive, send)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
        body = b"".join(chunks)
        if self.key is not None and scope["path"] in PROTECTED:
            given = header_key(scope)
            if given is None:
                given = self._body_key(body)
            if not key_matches(given, self.key):
                await self._unauthorized()(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
