"""Browser tests against the running ASGI app: a pytest plugin loaded by the root conftest.py.

- `asgi_live_server` (session): daphne serving `config.asgi.application` (HTTP through Django, WebSockets through
  Channels, static files through Django's finders as in development) from a thread of this process. Being in this
  process, it reads and writes the test database the test sees (use `pytest.mark.django_db(transaction=True)`: the
  server's requests run on their own connections, so rows must be committed) and shares the channel layer the test
  settings name (Redis), so a reading the test stores through the ingest service reaches the browser's sockets.
- `browser` (per module): Debian's Chromium driven by Playwright (never a browser download of Playwright's own).
- `browser_page(user=None, width=1280, height=900)`: a fresh context logged in as `user` (a session cookie made
  with Django's test client, no log-in form) with relative URLs going to `asgi_live_server`.

Twisted's reactor runs once per process, so the server starts at the first test that needs it and stops at the end
of the session.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000
# Where browser tests save their screenshots: test-artifacts/screenshots/ (ignored by git) in a plain run, the
# README's docs/screenshots/ with SCREENSHOTS=1 (`make screenshots`).
SCREENSHOT_DIR = Path(settings.BASE_DIR) / (
    "docs/screenshots" if os.environ.get("SCREENSHOTS") == "1" else "test-artifacts/screenshots"
)


@dataclass(frozen=True)
class AsgiLiveServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


@pytest.fixture(scope="session")
def asgi_live_server() -> Iterator[AsgiLiveServer]:
    """daphne with the project's ASGI application on a free port of 127.0.0.1, in a daemon thread."""
    # Imported here: daphne.server installs Twisted's asyncio reactor, which only the tests that serve need.
    from daphne.server import Server
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from twisted.internet import reactor

    from config.asgi import application

    ready = threading.Event()
    server = Server(
        # Static files (the dashboard's own JS, uPlot from its package) from the finders, as `runserver` serves them.
        application=ASGIStaticFilesHandler(application),
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        signal_handlers=False,
        ready_callable=ready.set,
        verbosity=0,
    )
    thread = threading.Thread(target=server.run, name="asgi-live-server", daemon=True)
    thread.start()
    # ready_callable runs as the reactor starts; the port opens just after (listening_addresses fills then).
    deadline = time.monotonic() + 30
    while not (ready.is_set() and server.listening_addresses):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("daphne did not start listening within 30 s")
        time.sleep(0.02)
    host, port = server.listening_addresses[0]
    yield AsgiLiveServer(host=host, port=port)
    reactor.callFromThread(reactor.stop)
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def _allow_async_unsafe() -> Iterator[None]:
    """Playwright's sync API runs an event loop in the test thread; let Django's ORM run there all the same.

    Module-scoped (as `browser`) so that it also covers the database flush of `transactional_db` at each test's
    teardown, and ends with the module's browser.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(_allow_async_unsafe) -> Iterator[Any]:
    """One headless Chromium for the module; missing, it fails the test in CI and skips it elsewhere."""
    from playwright.sync_api import sync_playwright

    from conftest import require_server

    if not CHROMIUM.is_file():
        require_server(
            "Chromium", FileNotFoundError(f"{CHROMIUM} does not exist"), hint="`make test` installs it (apt-get)"
        )
    # Between its calls Playwright's sync API leaves its event loop marked as running in this thread, so asgiref
    # takes the thread for an async one and hands Django a second, empty set of connections there. Point it at
    # the ones the test database was set up on (they carry serialized_rollback's snapshot, and the in-memory
    # SQLite database the live server shares).
    sync_connections = {alias: connections[alias] for alias in connections}
    with sync_playwright() as playwright:
        for alias, connection in sync_connections.items():
            connections[alias] = connection
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def session_cookie(user: Any, *, url: str) -> dict[str, Any]:
    """The session cookie of `user` logged in (Django's test client makes the session), for a browser context."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    return {"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": url}


@pytest.fixture
def browser_page(browser, asgi_live_server: AsgiLiveServer) -> Iterator[Callable[..., Any]]:
    """A factory of pages on the ASGI live server: `browser_page(user=None, width=1280, height=900)`.

    Each call opens a new context (its own cookies), logged in as `user` when one is given; all are closed after
    the test.
    """
    contexts: list[Any] = []

    def open_page(user: Any = None, *, width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(base_url=asgi_live_server.url, viewport={"width": width, "height": height})
        context.set_default_timeout(TIMEOUT_MS)
        if user is not None:
            context.add_cookies([session_cookie(user, url=asgi_live_server.url)])
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
