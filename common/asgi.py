"""ASGI middleware of the HTTP edge: the request body cap, applied before anything buffers the body.

Django's ASGI handler reads the whole body before it routes the request (into a spooled file that spills to disk),
so its own `DATA_UPLOAD_MAX_MEMORY_SIZE` check comes after the body was received. `RequestBodyLimit` counts the
bytes as the server hands them over instead:

- a `Content-Length` above the cap is answered 413 at once, without reading a byte of the body;
- a body longer than its `Content-Length` says is read only until it passes the cap: the middleware then stops
  pulling from the server, tells the application the client went away (Django drops the request unanswered), and
  answers 413 itself;
- a body sent without one (chunked) is read whole before the application is called, and answered 413 at the first
  chunk past the cap; a body within the cap reaches the application with the length counted (DRF reads a request
  without a length as an empty body).
  Either way at most the cap plus one server chunk is ever read.

The 413 body is the one API error shape (`request_too_large`). The cap is `REQUEST_MAX_BODY_BYTES`, read at each
request. A server that reads the whole body before calling the application (daphne does) is capped by a proxy in
front of it: docs/operations.md, "Request limits".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from common.exceptions import RequestTooLarge, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]


def error_response(status: int, *, error: str, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of an error answered before Django (the one error shape); the connection is
    closed after it, any unread body is not drained."""
    body = json.dumps(error_body(error=error, detail=detail), separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return status, headers, body


def request_too_large_response(limit: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The 413 answer (`error_response`)."""
    return error_response(413, error=RequestTooLarge.default_code, detail=RequestTooLarge.message(limit))


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # Django reads a malformed length as 0; the streamed count still applies
    return None


class RequestBodyLimit:
    """Answers 413 to HTTP requests whose body passes `REQUEST_MAX_BODY_BYTES`; other scopes pass untouched.

    Guarantees: the wrapped application never receives more body bytes than the cap, and the middleware never
    pulls more than the cap plus one message from the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int = settings.REQUEST_MAX_BODY_BYTES
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, limit)
            return

        if declared is None:
            await self._call_with_counted_length(scope, receive, send, limit)
            return

        received = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Stop reading here: the application hears of a client that left (Django then drops the
                    # request unanswered) and the 413 is sent below.
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # whatever the application still answers, the 413 below replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, watched_send)
        if over and not started:
            await self._refuse(send, limit)

    async def _call_with_counted_length(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """A body without a `Content-Length` (chunked): read it whole, up to the cap, then hand it to the application
        with the length counted. DRF reads a request without a length as an empty body, so a chunked JSON body
        would otherwise be refused as empty. Memory stays within the cap (the server, and Django after it, hold the
        body anyway)."""
        pieces: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body was complete: nobody is left to answer
            pieces.append(message.get("body", b""))
            received += len(pieces[-1])
            if received > limit:
                await self._refuse(send, limit)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(pieces)
        headers = [(name, value) for name, value in scope.get("headers", []) if name.lower() != b"transfer-encoding"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the server's disconnect, when it comes

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        status, headers, body = request_too_large_response(limit)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
