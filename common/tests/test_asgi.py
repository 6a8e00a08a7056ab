"""The request body cap of the ASGI application (common/asgi.py, wired in config/asgi.py), through real ASGI calls.

Each test calls `config.asgi.application` as a server would, with a `receive` that counts the body messages the
application pulls: the cap holds when the count stops at the cap, whatever the client would still send.
"""

import asyncio
import json

import pytest
from channels.testing import HttpCommunicator
from django.conf import settings
from knox.models import AuthToken

from config.asgi import application

CHUNK = 64 * 1024


def post_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    """The scope of a JSON POST to `path`, as a server makes it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Client:
    """A client sending `chunks` body messages of CHUNK bytes (the last with `more_body: False`)."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        if self.pulled >= self.chunks:
            await asyncio.sleep(3600)  # a client that sent everything waits for the answer (a disconnect never comes)
        self.pulled += 1
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": self.pulled < self.chunks}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def call(self, *, headers: list[tuple[bytes, bytes]], path: str = "/api/v1/readings/") -> None:
        scope = post_scope(path, headers)
        # daphne calls the application with keyword arguments
        asyncio.run(asyncio.wait_for(application(scope=scope, receive=self.receive, send=self.send), timeout=60))

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.sent if m["type"] == "http.response.start")

    @property
    def body(self) -> dict:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body"))


@pytest.fixture
def one_mib_cap(settings):
    settings.REQUEST_MAX_BODY_BYTES = 1024 * 1024
    return settings.REQUEST_MAX_BODY_BYTES


def test_a_declared_length_over_the_cap_is_refused_before_a_byte_is_read(one_mib_cap):
    client = Client(chunks=200 * 16)  # 200 MiB
    client.call(headers=[(b"content-length", str(200 * 1024 * 1024).encode())])

    assert client.pulled == 0
    assert client.status == 413
    assert client.body == {
        "error": "request_too_large",
        "detail": "The request body is larger than the limit of 1,048,576 bytes.",
        "fields": {},
    }


def test_a_streamed_body_is_read_only_up_to_the_cap(one_mib_cap):
    """Chunked (no Content-Length): reading stops at the first chunk past the cap, of the 64 MiB offered."""
    client = Client(chunks=1024)
    client.call(headers=[(b"transfer-encoding", b"chunked")])

    assert client.pulled == one_mib_cap // CHUNK + 1
    assert client.status == 413
    assert client.body["error"] == "request_too_large"


def test_a_content_length_that_lies_does_not_lift_the_cap(one_mib_cap):
    client = Client(chunks=1024)
    client.call(headers=[(b"content-length", b"10")])

    assert client.pulled == one_mib_cap // CHUNK + 1
    assert client.status == 413


def test_a_body_at_the_cap_reaches_django(one_mib_cap):
    """Exactly the cap passes: Django answers (401, no credentials), not the middleware."""
    client = Client(chunks=one_mib_cap // CHUNK)
    client.call(headers=[(b"content-length", str(one_mib_cap).encode())])

    assert client.pulled == one_mib_cap // CHUNK
    assert client.status == 401
    assert client.body["error"] == "not_authenticated"


@pytest.mark.django_db(transaction=True)
def test_a_full_batch_of_readings_fits_under_the_default_cap(role_groups, operator):
    """The largest legitimate request, 10,000 readings pretty-printed with long keys, is stored through the ASGI
    application under the default cap."""
    assert settings.REQUEST_MAX_BODY_BYTES == 10 * 1024 * 1024
    readings = [
        {
            "sensor": f"north-platform.deck-{i % 4}.temperature-sensor-{i % 4:02d}",
            "value": 14.123456789 + i,
            "timestamp": f"2024-12-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000+00:00",
        }
        for i in range(settings.SENSORS_REST_MAX_BATCH)
    ]
    body = json.dumps(readings, indent=4).encode()
    _, token = AuthToken.objects.create(user=operator)
    headers = [
        (b"host", b"localhost"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Token {token}".encode()),
    ]

    async def post() -> dict:
        communicator = HttpCommunicator(application, "POST", "/api/v1/readings/", body=body, headers=headers)
        return await communicator.get_response(timeout=120)

    response = asyncio.run(post())

    assert len(body) < settings.REQUEST_MAX_BODY_BYTES
    assert response["status"] == 201, response["body"][:500]
    assert json.loads(response["body"])["stored"] == settings.SENSORS_REST_MAX_BATCH


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_under_the_cap_is_read_whole(role_groups, operator):
    """A body sent chunked (no Content-Length, as many HTTP clients of devices send it) reaches the API whole: DRF
    reads a request without a length as empty, so the middleware gives it the length it counted."""
    from sensors.models import Reading

    body = json.dumps([{"sensor": "chunked", "value": i, "timestamp": f"2024-12-01T00:00:{i:02d}Z"} for i in range(30)])
    pieces = [body[i : i + 100].encode() for i in range(0, len(body), 100)]
    _, token = AuthToken.objects.create(user=operator)
    sent: list[dict] = []
    pulled = 0

    async def receive() -> dict:
        nonlocal pulled
        if pulled >= len(pieces):
            await asyncio.sleep(3600)
        pulled += 1
        return {"type": "http.request", "body": pieces[pulled - 1], "more_body": pulled < len(pieces)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = post_scope(
        "/api/v1/readings/", [(b"transfer-encoding", b"chunked"), (b"authorization", f"Token {token}".encode())]
    )
    asyncio.run(asyncio.wait_for(application(scope=scope, receive=receive, send=send), timeout=60))
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    assert next(m["status"] for m in sent if m["type"] == "http.response.start") == 201, answer
    assert json.loads(answer)["stored"] == 30
    assert Reading.objects.filter(sensor__key="chunked").count() == 30
