"""ASGI middleware of the HTTP edge: the request body cap, applied before anything buffers the body.

Django's ASGI handler reads the whole body before it routes the request (into a spooled file that spills to disk),
so its own `DATA_UPLOAD_MAX_MEMORY_SIZE` check comes after the body was received. `RequestBodyLimit` counts the
bytes as the server hands them over instead:

- a `Content-Length` above the cap is answered 413 at once, without reading a byte of the body;
- a body sent without one (chunked) or longer than it says is read only until it passes the cap: the middleware
  then stops pulling from the server, tells the application the client went away (Django drops the request
  unanswered), and answers 413 itself. At most the cap plus one server chunk is ever read.

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


def request_too_large_response(limit: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the 413 answer; the connection is closed, its unread body is not drained."""
    body = json.dumps(
        error_body(error=RequestTooLarge.default_code, detail=RequestTooLarge.message(limit)), separators=(",", ":")
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return 413, headers, body


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

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        status, headers, body = request_too_large_response(limit)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
