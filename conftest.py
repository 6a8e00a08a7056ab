"""Fixtures shared by every app's tests."""

import asyncio
import contextlib
import dataclasses
import importlib
import os
import socket
import subprocess
import sys
import time

import pytest
import redis
import responses
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory

# Browser tests against the running ASGI app: asgi_live_server, browser, browser_page (common/tests/browser.py).
pytest_plugins = ["common.tests.browser"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Examples per operation and caller in the probe (common/tests/test_probe.py): sized for CI's time.
PROBE_EXAMPLES = 5


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--probe-examples",
        type=int,
        default=PROBE_EXAMPLES,
        help=f"generated requests per operation and caller in the probe (default {PROBE_EXAMPLES}, sized for CI)",
    )


@dataclasses.dataclass(frozen=True)
class ProbeFailure:
    """One failed check of the probe: which caller, which operation, which check (`ST105 Undocumented ...`)."""

    role: str
    operation: str
    check: str


PROBE_FAILURES = pytest.StashKey[list[ProbeFailure]]()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The probe's failures, one line per operation, caller and check (each test's report has the curl)."""
    failures = sorted(set(config.stash.get(PROBE_FAILURES, [])), key=lambda f: (f.operation, f.check, f.role))
    if not failures:
        return
    terminalreporter.section("probe: failed checks by operation")
    lines: dict[tuple[str, str], list[str]] = {}
    for failure in failures:
        lines.setdefault((failure.operation, failure.check), []).append(failure.role)
    for (operation, check), roles in lines.items():
        terminalreporter.write_line(f"{operation:<55} {check:<45} {', '.join(roles)}")


def pytest_configure(config: pytest.Config) -> None:
    global _probe_examples  # noqa: PLW0603 (the option is read before the probe's module is collected)
    _probe_examples = config.getoption("probe_examples")


_probe_examples = PROBE_EXAMPLES


def probe_examples() -> int:
    """The examples per operation and caller the probe generates (`--probe-examples`)."""
    return _probe_examples


def _db_order(item: pytest.Item) -> float:
    """pytest-django's order (database tests, then transactional ones, then the rest), with the transactional tests
    that use `serialized_rollback` before the plain ones, and the probe (common/tests/test_probe.py) last."""
    if item.get_closest_marker("probe"):
        return 3  # its rows are committed for the server to read: no other database test may see them
    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", [])
    kwargs = marker.kwargs if marker else {}
    if kwargs.get("transaction") or kwargs.get("reset_sequences") or "transactional_db" in fixtures:
        return 1 if kwargs.get("serialized_rollback") else 1.5
    return 0 if marker or "db" in fixtures else 2


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A serialized restore re-inserts the migrated rows with their original ids; a plain transactional test's
    flush lets post_migrate make the content types again with new ids, after which such a restore fails (duplicate
    content type). So, whatever order the paths are given in, serialized tests run first (a stable sort)."""
    items.sort(key=_db_order)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters and rate limits live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def require_server(name: str, error: Exception, *, hint: str = "start it or set its URL to run this test") -> None:
    """A missing server (or browser) fails the test in CI and skips it elsewhere, with the reason."""
    message = f"{name} is not available: {error}"
    if IN_CI:
        pytest.fail(f"{message} (CI runs against the real servers and browser; none may be missing)")
    pytest.skip(f"{message}; {hint}")


@pytest.fixture
def redis_url() -> str:
    """The URL of a live Redis, emptied of test keys before and after the test."""
    url = settings.REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        require_server("Redis", exc)
    yield url
    client.close()


@pytest.fixture
def mqtt_url() -> str:
    """The URL of a live MQTT broker (Mosquitto). Tests keep to topic prefixes and client ids of their own."""
    from sensors.transports.mqtt import broker_parse

    url = settings.MQTT_URL
    try:
        broker = broker_parse(url)
        socket.create_connection((broker.host, broker.port), timeout=2).close()
    except (ValueError, OSError) as exc:
        require_server("MQTT broker", exc)
    return url


@pytest.fixture
def http():
    """Third-party HTTP only (rate providers, external sources), answered from recordings; a request nobody
    registered fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def viewer(db):
    return UserFactory(viewer=True)


@pytest.fixture
def operator(db):
    return UserFactory(operator=True)


@pytest.fixture
def staff_user(db):
    return UserFactory(staff=True)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_as(db):
    """`client_as(user)`: an API client logged in (session) as that user."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def postgresql() -> None:
    """The test is about PostgreSQL (partitions, a server ending connections, SQL only it runs): it fails in CI and
    skips elsewhere when the tests run on SQLite."""
    from django.db import connection

    if connection.vendor != "postgresql":
        require_server("PostgreSQL", RuntimeError("the tests run on SQLite"), hint="set DATABASE_URL to run this test")


@pytest.fixture
def process_database_url(db, postgresql) -> str:
    """A DATABASE_URL that another process (worker, consumer) can use to reach this test's database: PostgreSQL
    only, since SQLite's in-memory test database lives inside this process (fails in CI, skips elsewhere)."""
    url = process_database_url_or_none()
    assert url is not None  # the `postgresql` fixture made sure
    return url


def process_database_url_or_none() -> str | None:
    """The test database's URL for another process, or None when it is SQLite's (in this process's memory)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}:{port}/{db['NAME']}"


@contextlib.contextmanager
def celery_worker_process(*, name: str, env: dict[str, str], queues: str = "celery"):
    """A real `celery worker` process (solo pool) with `env` on top of ours, up once it answers a ping; stopped
    on exit. `env` names the broker (REDIS_URL) and, for workers that touch the database, the test database."""
    from config.celery_app import app as celery_app

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"{name}-{os.getpid()}@%h",
            "--loglevel=WARNING",
            f"--queues={queues}",
        ],  # fmt: skip
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    try:
        while not celery_app.control.ping(timeout=0.5):
            if process.poll() is not None:
                pytest.fail(f"the worker exited: {process.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the worker did not answer pings within 60 s")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def role_groups(db) -> None:
    """The role groups as migration accounts 0002 makes them, for `transaction=True` tests, whatever the previous
    test left: a plain flush empties every table and post_migrate makes content types and permissions again (with
    new ids) but not the groups; a `serialized_rollback` test's flush leaves no permissions at all. (Using
    `serialized_rollback` here instead would collide with content types a previous plain flush renumbered.)"""
    role_groups_ensure()


def role_groups_ensure() -> None:
    """Make the role groups with their permissions as migration accounts 0002 does, if a flush removed them."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    create_permissions(apps.get_app_config("accounts"), verbosity=0)
    for role, codenames in importlib.import_module("accounts.migrations.0002_roles").ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames))


@pytest.fixture
def live_groups_restored(redis_url):
    """For tests of live streams on the real Redis channel layer (missing Redis fails in CI, skips elsewhere):
    group members a failing test leaves behind are removed, so that no later test finds a stranger in a group."""
    client = redis.Redis.from_url(redis_url)
    groups = "asgi:group:*"
    before = {key: set(client.zrange(key, 0, -1)) for key in client.scan_iter(groups)}
    yield
    for key in client.scan_iter(groups):
        left = set(client.zrange(key, 0, -1)) - before.get(key, set())
        if left:
            client.zrem(key, *left)
    client.close()


@pytest.fixture
def ws_headers(db):
    """`ws_headers(user=None, token=None, device_key=None, origin="http://localhost")`: the handshake headers of a
    browser page of one of our hosts (the session cookie of `user`, if any) or, with `token` or `device_key`, of a
    script (an `Authorization` header and no Origin). Synchronous: it logs the user in through the database."""
    from django.test import Client

    def make(*, user=None, token: str | None = None, device_key: str | None = None, origin: str | None = None):
        if token is not None:
            return [(b"authorization", f"Token {token}".encode())]
        if device_key is not None:
            return [(b"authorization", f"Device {device_key}".encode())]
        headers = [(b"origin", (origin or "http://localhost").encode())]
        if user is not None:
            client = Client()
            client.force_login(user)
            session = client.cookies[settings.SESSION_COOKIE_NAME].value
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
        return headers

    return make


@pytest.fixture
def ws_open():
    """`await ws_open(path, headers)`: a socket on the real ASGI application (`config.asgi`), as (communicator, first
    message) when the consumer accepted; (None, close code) when it refused after accepting (its error message is
    checked against the code), or (None, "handshake") when the handshake itself was refused (HTTP 403)."""
    return _ws_open


async def _ws_open(path: str, headers: list, *, timeout: float = 5):
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=timeout)
    if not connected:  # refused at the handshake (the client sees HTTP 403)
        return None, "handshake"
    first = await communicator.receive_json_from(timeout=timeout)
    if first["type"] != "error":
        return communicator, first
    closing = await communicator.receive_output(timeout=timeout)
    assert closing == {"type": "websocket.close", "code": first["code"]}, (first, closing)
    # A real client answers the close a network round trip later; disconnecting at once can cancel the consumer
    # while channels-redis opens its connection, and Python 3.11's `asyncio.wait_for` (inside redis-py) may then
    # swallow the cancellation: the consumer's read would go on until the test's timeout.
    await asyncio.sleep(0.05)
    await communicator.disconnect(code=first["code"], timeout=timeout)  # what the server reports once closed
    return None, first["code"]


def assert_schema_complete() -> None:
    """Fails when a migration of any app is not applied (a test that migrates backwards must leave none behind)."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
