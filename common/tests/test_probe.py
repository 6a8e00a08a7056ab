"""The probe: schemathesis sends generated requests, valid and invalid, to the running ASGI server (daphne serving
`config.asgi:application`, as in production) for each caller: anonymous, viewer, operator and staff, each with an
API token of its own. Every answer must be documented by the project's own schema (`/api/schema/`, as the server
serves it): no server error, no undocumented status, no body or content type the schema does not describe.

- The server runs against this session's test database (PostgreSQL: another process cannot reach SQLite's in-memory
  test database), with throttle rates high enough that no answer is a 429; `test_throttled_answers_are_documented`
  proves the 429s against a second server with low rates.
- The token-revoke operation would end the shared token of a run: it is left out of the shared runs and probed on
  its own (`test_probe_token_revoke`), each request with a throwaway token.
- Reproducible: Hypothesis is derandomized (the same cases every run) and keeps no example database. The examples
  per operation are `--probe-examples` (default `PROBE_EXAMPLES`, sized for CI: all four callers in about three
  minutes on two cores); run `make probe PYTEST_ARGS="--probe-examples 200"` to probe harder.

A failure names the caller (`[viewer]`), the operation (`[GET /api/v1/sensors/]`), the failed check and a curl
command that reproduces it; the server's log is written next to the test's temporary files (its path is printed).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from django.conf import settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import probe_examples, require_server, role_groups_ensure

pytestmark = pytest.mark.probe

ROLES = ("anonymous", "viewer", "operator", "staff")
REVOKE_PATH = "/api/v1/auth/token/revoke/"
PASSWORD = "probe-correct-horse-battery"
# Every answer is checked for these, and only these: a 5xx, a status the operation does not document, a content
# type or a body its schema does not describe.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# High enough that the probe never meets a throttle (each scope's setting is an environment variable).
UNTHROTTLED = {"API_THROTTLE_ANON": "1000000/minute", "API_THROTTLE_USER": "1000000/minute",
               "API_THROTTLE_LOGIN": "1000000/minute"}  # fmt: skip
SEED = 14
# The database's name before any test database is set up (this module is collected before any test runs).
DATABASE_NAME = settings.DATABASES["default"]["NAME"]


@dataclass(frozen=True)
class Server:
    """A daphne process serving the project to the probe."""

    url: str
    log: Path
    process: subprocess.Popen

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@dataclass(frozen=True)
class Caller:
    """One caller of the probe: its user (none when anonymous) and the headers it sends."""

    role: str
    email: str | None
    headers: dict[str, str]


def database_url() -> str:
    """The URL of this session's test database for another process (PostgreSQL only)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        require_server("PostgreSQL", RuntimeError("the tests run on SQLite"), hint="set DATABASE_URL to probe")
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}:{port}/{db['NAME']}"


@contextlib.contextmanager
def daphne_server(*, name: str, log_dir: Path, env: dict[str, str]) -> Iterator[Server]:
    """`daphne config.asgi:application` on a socket bound here (a free port, no race for it), with the test
    settings and `env` on top; up once `/healthcheck/live` answers, stopped on exit."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    log = log_dir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(listener.fileno()), "-v", "1",
             "config.asgi:application"],  # fmt: skip
            cwd=settings.BASE_DIR,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
            pass_fds=[listener.fileno()],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    listener.close()  # daphne holds its own copy
    server = Server(url=f"http://127.0.0.1:{port}", log=log, process=process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"daphne exited with {process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{server.url}/healthcheck/live", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"daphne did not answer within 60 s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def callers_create() -> dict[str, Caller]:
    """The probe's users, made with the accounts services, each with an API token (committed: the server reads
    them)."""
    from accounts.services import api_token_create, user_create

    callers = {"anonymous": Caller(role="anonymous", email=None, headers={})}
    kinds = {"viewer": {"role": "viewer"}, "operator": {"role": "operator"}, "staff": {"is_staff": True}}
    for role, kwargs in kinds.items():
        email = f"probe-{role}@example.com"
        user = user_create(email=email, password=PASSWORD, first_name=role.title(), **kwargs)
        _, token = api_token_create(user=user)
        callers[role] = Caller(role=role, email=email, headers={"Authorization": f"Token {token}"})
    return callers


def data_seed() -> None:
    """A few rows of each kind, so that list and detail answers carry bodies the schema can be checked against."""
    from detection.tests.factories import AnomalyFactory, DetectionFactory, SensorEventFactory, SystemEventFactory
    from rates.models import Currency
    from rates.tests.factories import ExchangeRateFactory
    from sensors.tests.factories import InstallationFactory, PlatformFactory, ReadingFactory, SensorFactory

    platform = PlatformFactory(slug="probe-platform", name="Probe platform")
    InstallationFactory(platform=platform)
    sensor = SensorFactory(key="probe-sensor", platform=platform)
    ReadingFactory.create_batch(5, sensor=sensor)
    DetectionFactory.create_batch(3, sensor=sensor)
    AnomalyFactory(sensor=sensor)
    SensorEventFactory(sensor=sensor)
    SystemEventFactory()
    for code, name in (("EUR", "Euro"), ("USD", "US Dollar")):  # gone if a transactional test flushed them
        Currency.objects.get_or_create(code=code, defaults={"name": name, "minor_units": 2})
    ExchangeRateFactory()


@pytest.fixture(scope="session")
def probe_database(request, django_db_setup, django_db_blocker) -> Iterator[tuple[str, dict[str, Caller]]]:
    """This session's test database with the probe's callers and rows, committed (the server is another process
    and reads them), as (its URL for the server, the callers); flushed at the end.

    The probe's tests run after every other database test (`conftest._db_order`), so that no other test sees these
    rows; and since they ask for no per-test database (a transaction the server could not see through, or a flush
    after each of some 200 tests), pytest-django sets the test database up only when another selected test needs
    it: when none does (`make probe`), it is set up here."""
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        created = None
        if connection.settings_dict["NAME"] == DATABASE_NAME:  # still the real one: not set up
            created = setup_databases(verbosity=0, interactive=False, aliases={"default"})
        url = database_url()
        role_groups_ensure()  # a transactional test's flush may have removed them
        callers = callers_create()
        data_seed()
    yield url, callers
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        if created is not None:
            teardown_databases(created, verbosity=0)


@pytest.fixture(scope="session")
def callers(probe_database) -> dict[str, Caller]:
    return probe_database[1]


@pytest.fixture(scope="session")
def probe_server(probe_database, tmp_path_factory) -> Iterator[Server]:
    """The server the probe runs against, over this session's test database, its throttles out of the way."""
    url, _ = probe_database
    log_dir = tmp_path_factory.mktemp("probe")
    with daphne_server(name="probe-server", log_dir=log_dir, env={"DATABASE_URL": url, **UNTHROTTLED}) as server:
        print(f"probe server {server.url}, log {server.log}")  # noqa: T201 (shown with -s and on failure)
        yield server


def schema_generate() -> dict:
    """The project's OpenAPI schema as `/api/schema/?format=json` serves it (drf-spectacular, rendered to JSON)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def probe_schema(*, coverage: bool):
    """The schema with the probe's configuration: Hypothesis' fuzzing (valid and invalid requests, `--probe-examples`
    of each per operation), and with `coverage` also schemathesis' coverage phase (every boundary value, missing
    and wrong-typed parameter, and unexpected methods the schema implies: thorough but some 30 requests per
    operation, so run for one caller only)."""
    return schemathesis.openapi.from_dict(
        SCHEMA,
        config=SchemathesisConfig.from_dict(
            {
                "seed": SEED,
                "generation": {
                    "max-examples": probe_examples(),
                    "deterministic": True,  # Hypothesis' derandomize: the same cases every run
                    "database": "none",
                },
                "phases": {"coverage": {"enabled": coverage}},
                "request-timeout": 30,
            }
        ),
    )


# Built when the module is collected (schemathesis makes one test per operation then); the server's own answer is
# checked to be this same schema (`test_server_serves_the_probed_schema`).
SCHEMA = schema_generate()
FUZZ = probe_schema(coverage=False).exclude(path=REVOKE_PATH)
THOROUGH = probe_schema(coverage=True).exclude(path=REVOKE_PATH)
REVOKE = probe_schema(coverage=True).include(path=REVOKE_PATH)


def test_server_serves_the_probed_schema(probe_server):
    """The probe's schema is the one the running server serves."""
    served = requests.get(f"{probe_server.url}/api/schema/?format=json", timeout=30)
    assert served.status_code == 200
    assert served.json() == SCHEMA


def probe(case, caller: Caller, server: Server) -> None:
    case.call_and_validate(base_url=server.url, headers=caller.headers, checks=CHECKS)


@FUZZ.parametrize()
def test_probe_anonymous(case, callers, probe_server):
    """Every operation but the token revoke, with no credentials: only documented answers."""
    probe(case, callers["anonymous"], probe_server)


@FUZZ.parametrize()
def test_probe_viewer(case, callers, probe_server):
    """Every operation but the token revoke, with a viewer's token: only documented answers."""
    probe(case, callers["viewer"], probe_server)


@FUZZ.parametrize()
def test_probe_operator(case, callers, probe_server):
    """Every operation but the token revoke, with an operator's token: only documented answers."""
    probe(case, callers["operator"], probe_server)


@THOROUGH.parametrize()
def test_probe_staff(case, callers, probe_server):
    """Every operation but the token revoke, with a staff member's token (who may do everything: every request
    gets past the permissions to the input's checks), fuzzing and the coverage phase: only documented answers."""
    probe(case, callers["staff"], probe_server)


@REVOKE.parametrize()
def test_probe_token_revoke(case, callers, probe_server, django_db_blocker):
    """The token revoke for each caller, each request with a token of its own (which it revokes)."""
    from accounts.models import User
    from accounts.services import api_token_create

    for caller in callers.values():
        headers = {}
        if caller.email is not None:
            with django_db_blocker.unblock():  # committed: the server must find it
                _, token = api_token_create(user=User.objects.get(email=caller.email))
            headers = {"Authorization": f"Token {token}"}
        case.call_and_validate(base_url=probe_server.url, headers=headers, checks=CHECKS)


def test_throttled_answers_are_documented(probe_database, tmp_path):
    """With low rates each throttle answers 429, and each 429 is documented with its body (against a server of
    its own: the probe's has its throttles out of the way)."""
    url, callers = probe_database
    api = probe_schema(coverage=False)
    rates = {"API_THROTTLE_ANON": "2/minute", "API_THROTTLE_USER": "2/minute", "API_THROTTLE_LOGIN": "2/minute"}
    with daphne_server(name="throttled-server", log_dir=tmp_path, env={"DATABASE_URL": url, **rates}) as server:
        requests_ = [
            ("anon", "GET", "/api/v1/sensors/", {}, None),
            ("user", "GET", "/api/v1/users/me/", callers["viewer"].headers, None),
            ("login", "POST", "/api/v1/auth/token/", {}, {"email": "probe-viewer@example.com", "password": "wrong"}),
        ]
        for scope, method, path, headers, body in requests_:
            operation = api[path][method]
            kwargs = {"body": body, "media_type": "application/json"} if body is not None else {}
            statuses = []
            for _ in range(3):
                case = operation.Case(**kwargs)
                response = case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS)
                statuses.append(response.status_code)
            assert statuses[-1] == 429, (scope, statuses)
            assert response.json()["error"] == "throttled", response.json()
            assert "Retry-After" in response.headers
