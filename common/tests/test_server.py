"""The production HTTP server (`python -m config.server`, daphne capped) as a real process, over real sockets.

Plain daphne received every body whole before the application could refuse it (a 200 MB POST held 200 MB in the
server), and Twisted answered a multipart body it could not parse with an empty 400. Each test counts bytes or
reads answers; none measures time.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings

CAP = 1024 * 1024
SERVER = [sys.executable, "-m", "config.server"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server_port():
    """The server on a free port, with a 1 MiB cap; no database is reached by these requests."""
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "REQUEST_MAX_BODY_BYTES": str(CAP)}
    process = subprocess.Popen(
        [*SERVER, "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(300):  # up to 30 s to import Django and listen
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            if process.poll() is not None:
                pytest.fail(f"the server exited: {process.stderr.read().decode()[-2000:]}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)
        else:
            pytest.fail("the server did not listen within 30 s")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    assert data, "the server closed the connection without an answer"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _request(port: int, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode() + b"\r\n")
    return sock


def test_a_declared_length_over_the_cap_is_answered_413_before_the_body_is_sent(server_port):
    sock = _request(
        server_port,
        "POST /api/v1/readings/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n",
    )
    with sock:
        status, headers, body = _answer(sock)  # not a byte of the 200 MiB was sent

    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "error": "request_too_large",
        "detail": f"The request body is larger than the limit of {CAP:,} bytes.",
        "fields": {},
    }


def test_a_chunked_body_is_cut_off_once_it_passes_the_cap(server_port):
    """The client streams up to 200 MiB; the server answers 413 and closes long before (kernel buffers on both
    sides take some megabytes more than the cap before the client notices)."""
    sock = _request(
        server_port,
        "POST /api/v1/readings/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n",
    )
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    sent = 0
    with sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 200 * 1024 * 1024:
                sock.sendall(chunk)
                sent += 65536
        status, _, body = _answer(sock)

    assert status == 413
    assert json.loads(body)["error"] == "request_too_large"
    assert sent < 64 * 1024 * 1024


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=x", b"garbage"),
        ("multipart/form-data; boundary=x", b"--y\r\n\r\n"),
        ("multipart/form-data", b"a"),
    ],
)
def test_a_malformed_multipart_body_reaches_the_api_and_answers_json_400(server_port, content_type, body):
    sock = _request(
        server_port,
        f"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n",
    )
    with sock:
        sock.sendall(body)
        status, headers, answer = _answer(sock)

    assert status == 400
    assert headers.get("content-type") == "application/json", answer
    assert set(json.loads(answer)) == {"error", "detail", "fields"}


def test_websockets_still_upgrade(server_port):
    """The capped requests hand WebSocket upgrades to daphne's WebSocket protocol as before: an anonymous caller
    with no Origin is refused by the application during the handshake, which autobahn (daphne's WebSocket
    protocol) answers with its own 403; through plain HTTP it would be Django's JSON or a 404."""
    sock = _request(
        server_port,
        "GET /ws/sensors/x/readings/ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    )
    with sock:
        first = sock.recv(4096)

    assert first == b"HTTP/1.1 403 Access denied\r\n\r\n"


@pytest.mark.parametrize(
    ("head", "status", "error"),
    [
        # Twisted closed the connection without a word for a line over 16 KiB...
        ("GET /api/v1/sensors/?search=" + "x" * 20_000 + " HTTP/1.1\r\nHost: localhost\r\n", 414, "uri_too_long"),
        (
            "GET /api/v1/sensors/ HTTP/1.1\r\nHost: localhost\r\nX-Long: " + "x" * 20_000 + "\r\n",
            431,
            "headers_too_large",
        ),
        # ...and answered a bare 400 with no body to a header it cannot parse.
        ("GET /api/v1/sensors/ HTTP/1.1\r\nHost: localhost\r\nX-Nul: a\x00b\r\n", 400, "bad_request"),
        ("GET /api/v1/sensors/ HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n", 400, "bad_request"),
    ],
    ids=["long-request-line", "long-header", "nul-in-header", "header-without-colon"],
)
def test_requests_twisted_refuses_are_answered_in_the_one_error_shape(server_port, head, status, error):
    sock = _request(server_port, head)
    with sock:
        answer_status, headers, body = _answer(sock)

    assert answer_status == status
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == error
    assert set(json.loads(body)) == {"error", "detail", "fields"}
