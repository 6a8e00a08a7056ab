"""The production web process (daphne, ASGI) keeps no database connection after its HTTP requests have ended.

Under ASGI, Django runs each request's synchronous code in a thread of its own; a connection kept for reuse
(production's `CONN_MAX_AGE` of 60 s) would stay with a thread no request uses again, open until garbage
collection. Under load the web process held 79 idle connections of PostgreSQL's 100 and requests failed with "too
many clients already" (`python -m bench.load`, docs/benchmarks.md, "Load"); `common.db.
connections_close_after_asgi_request` closes them."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.core.management.utils import get_random_secret_key
from django.db import connection

from conftest import require_server

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> int:
    # A token that does not exist: knox looks it up, so each request queries the database, and answers 401.
    request = urllib.request.Request(url, headers={"Authorization": "Token " + "0" * 64})  # noqa: S310 (local)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (local server)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _server_connections(database: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        )
        return cursor.fetchone()[0]


def test_the_production_web_process_keeps_no_connection_after_its_requests():
    if connection.vendor != "postgresql":
        require_server("PostgreSQL", RuntimeError("the test database is not PostgreSQL"))
    database = settings.DATABASES["default"]
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
    )
    # Connections another test left behind (a thread's, closed when it is collected) are not the server's.
    before = _server_connections(database["NAME"])
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_URL"))}
    env = {
        **clean,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DJANGO_SECRET_KEY": get_random_secret_key() + get_random_secret_key(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "False",
        "DATABASE_URL": url,
        "API_THROTTLE_USER": "100000/minute",
        "API_THROTTLE_ANON": "100000/minute",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "config.server", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                assert time.monotonic() < deadline, "daphne did not start within 30 s"
                time.sleep(0.2)
        target = f"http://127.0.0.1:{port}/api/v1/sensors/"
        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(_get, [target] * REQUESTS))
        assert statuses == [401] * REQUESTS
        assert server.poll() is None
        # The last responses' connections are closed as their requests finish: up to 10 s on a busy machine. Kept
        # for reuse they would stay for CONN_MAX_AGE (60 s), one per request thread.
        deadline = time.monotonic() + 10
        while _server_connections(database["NAME"]) > before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _server_connections(database["NAME"]) - before == 0
    finally:
        server.terminate()
        server.wait(30)
