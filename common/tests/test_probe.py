"""The probe: schemathesis sends generated requests, valid and invalid, to the running ASGI server
(`python -m config.server`, daphne as production runs it, serving `config.asgi:application`) for each caller:
anonymous, viewer, operator and staff, each with an API token of its own. Every answer must be documented by the
project's own schema (the one `/api/schema/` serves): no server error, no undocumented status, no body or content
type the schema does not describe.

- The server runs against this session's test database (PostgreSQL: another process cannot reach SQLite's in-memory
  test database), with throttle rates high enough that no answer is a 429; `test_throttled_answers_are_documented`
  proves the 429s against a second server with low rates.
- The token revoke would end the shared token of a run: it is left out of the shared runs and probed on its own
  (`test_probe_token_revoke`), each request with a throwaway token.
- Reproducible: Hypothesis is derandomized (the same cases every run) and keeps no example database. The examples
  per operation and caller are `--probe-examples` (default `conftest.PROBE_EXAMPLES`, sized for CI: the whole probe
  in under three minutes on two cores); `make probe PYTEST_ARGS="--probe-examples 100"` probes harder.

A failure names the caller and the operation (`test_probe_viewer[GET /api/v1/sensors/{key}/]`), the failed check
and a curl command that reproduces it; the end of the run lists the failed checks by operation and caller; the
server's log is in the test's temporary directory (its path is printed with the captured output).
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
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import (
    PROBE_FAILURES,
    ProbeFailure,
    probe_examples,
    process_database_url_or_none,
    require_server,
    role_groups_ensure,
)

pytestmark = pytest.mark.probe

REVOKE_PATH = "/api/v1/auth/token/revoke/"
PASSWORD = "probe-correct-horse-battery"
# Every answer is checked for these, and only these: a 5xx, a status the operation does not document, a content
# type or a body its schema does not describe.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The health check's 503 is its documented answer when a part is down (the probe runs no worker or consumer); it
# is still checked to be documented, with the documented body.
HEALTH_PATH = "/healthcheck"
HEALTH_CHECKS = [check for check in CHECKS if check is not not_a_server_error]
# The server's settings: throttles high enough that the probe never meets one (each scope's rate is an environment
# variable); database connections kept as in production (prod.py).
SERVER_ENV = {"API_THROTTLE_ANON": "1000000/minute", "API_THROTTLE_USER": "1000000/minute",
              "API_THROTTLE_LOGIN": "1000000/minute", "DATABASE_CONN_MAX_AGE": "60"}  # fmt: skip
SEED = 14
# Strings that broke the API before (issue 14: NUL characters, UTC offsets beyond what PostgreSQL takes, years at
# the ends of the range), mixed into the generated strings: a few examples rarely hit them by chance.
HOSTILE = [
    "\x00",
    "a\x00b",
    "2024-01-01T00:00:00+23:59",
    "2024-01-01T00:00:00-16:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2024-01-01",
]
# Timestamps in the time parameters (Hypothesis' own date-times rarely reach these): offsets PostgreSQL refuses,
# the first and last years.
TIMES = ("since", "until", "start", "end")
HOSTILE_TIMESTAMPS = [
    "2024-01-01T00:00:00+23:59",
    "2024-01-01T00:00:00-22:02",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
]
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
    url = process_database_url_or_none()
    if url is None:
        require_server("PostgreSQL", RuntimeError("the tests run on SQLite"), hint="set DATABASE_URL to probe")
    return url


@contextlib.contextmanager
def daphne_server(*, name: str, log_dir: Path, env: dict[str, str]) -> Iterator[Server]:
    """`python -m config.server config.asgi:application` on a socket bound here (a free port, no race for it), with
    the test settings and `env` on top; up once `/healthcheck/live` answers, stopped on exit."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    log = log_dir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "config.server",  # daphne as production runs it (capped bodies, refusals in the one shape)
                "--fd",
                str(listener.fileno()),
                "-v",
                "1",
                "config.asgi:application",
            ],  # fmt: skip
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

    if connection.vendor != "postgresql":
        require_server("PostgreSQL", RuntimeError("the tests run on SQLite"), hint="set DATABASE_URL to probe")
    with django_db_blocker.unblock():
        still_real = connection.settings_dict["NAME"] == DATABASE_NAME
        created = setup_databases(verbosity=0, interactive=False, aliases={"default"}) if still_real else None
    try:
        with django_db_blocker.unblock():
            url = database_url()
            role_groups_ensure()  # a transactional test's flush may have removed them
            callers = callers_create()
            data_seed()
        yield url, callers
    finally:
        with django_db_blocker.unblock():
            if created is None:
                call_command("flush", interactive=False, verbosity=0)
            else:
                teardown_databases(created, verbosity=0)


@pytest.fixture(scope="session")
def failures(pytestconfig) -> list[ProbeFailure]:
    """The probe's failures, listed at the end of the run (conftest's `pytest_terminal_summary`)."""
    return pytestconfig.stash.setdefault(PROBE_FAILURES, [])


@pytest.fixture(scope="session")
def callers(probe_database) -> dict[str, Caller]:
    return probe_database[1]


@pytest.fixture(scope="session")
def probe_server(probe_database, tmp_path_factory) -> Iterator[Server]:
    """The server the probe runs against, over this session's test database, its throttles out of the way."""
    url, _ = probe_database
    log_dir = tmp_path_factory.mktemp("probe")
    with daphne_server(name="probe-server", log_dir=log_dir, env={"DATABASE_URL": url, **SERVER_ENV}) as server:
        print(f"probe server {server.url}, log {server.log}")  # noqa: T201 (shown with -s and on failure)
        yield server


def schema_generate() -> dict:
    """The project's OpenAPI schema as `/api/schema/?format=json` serves it (drf-spectacular, rendered to JSON)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def probe_schema(*, coverage: bool):
    """The schema with the probe's configuration: Hypothesis' fuzzing (valid and invalid requests, `--probe-examples`
    of each per operation, strings mixed with `HOSTILE` values), and with `coverage` also schemathesis' coverage
    phase (every boundary value, missing and wrong-typed parameter the schema implies, and OPTIONS where the path
    does not document it: thorough but some 30 requests per operation, so run for one caller only)."""
    return schemathesis.openapi.from_dict(
        SCHEMA,
        config=SchemathesisConfig.from_dict(
            {
                "seed": SEED,
                "dictionaries": {"hostile": {"values": HOSTILE}, "timestamps": {"values": HOSTILE_TIMESTAMPS}},
                "parameters": {f"query.{name}": {"dictionary": "timestamps", "probability": 0.3} for name in TIMES},
                "generation": {
                    "max-examples": probe_examples(),
                    "deterministic": True,  # Hypothesis' derandomize: the same cases every run
                    "database": "none",
                    "dictionaries": {"string": {"dictionary": "hostile", "probability": 0.1}},
                    # The caller's credentials are the test's: none generated, so each run probes its caller's
                    # rights (garbage credentials are the anonymous run's and the auth matrix's business).
                    "with-security-parameters": False,
                },
                # Reproducible: the cases do not depend on what the server answered before (values taken from its
                # responses or its 4xx messages would change with the database's ids and times).
                "phases": {
                    "coverage": {"enabled": coverage, "unexpected-methods": ["options"]},
                    "fuzzing": {"extra-data-sources": {"responses": False}, "error-feedback": {"enabled": False}},
                },
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


def probe(case, headers: dict[str, str], server: Server, failures: list[ProbeFailure], *, role: str) -> None:
    """Send the case as this caller and check the answer; a failure is also recorded for the run's summary."""
    checks = HEALTH_CHECKS if case.operation.path == HEALTH_PATH else CHECKS
    try:
        case.call_and_validate(base_url=server.url, headers=headers, checks=checks)
    except FailureGroup as group:
        failures.extend(
            ProbeFailure(role=role, operation=case.operation.label, check=f"{failure.code} {failure.title}")
            for failure in group.exceptions
        )
        raise


@FUZZ.parametrize()
def test_probe_anonymous(case, callers, probe_server, failures):
    """Every operation but the token revoke, with no credentials: only documented answers."""
    probe(case, callers["anonymous"].headers, probe_server, failures, role="anonymous")


@FUZZ.parametrize()
def test_probe_viewer(case, callers, probe_server, failures):
    """Every operation but the token revoke, with a viewer's token: only documented answers."""
    probe(case, callers["viewer"].headers, probe_server, failures, role="viewer")


@FUZZ.parametrize()
def test_probe_operator(case, callers, probe_server, failures):
    """Every operation but the token revoke, with an operator's token: only documented answers."""
    probe(case, callers["operator"].headers, probe_server, failures, role="operator")


@THOROUGH.parametrize()
def test_probe_staff(case, callers, probe_server, failures):
    """Every operation but the token revoke, with a staff member's token (who may do everything: every request
    gets past the permissions to the input's checks), fuzzing and the coverage phase: only documented answers."""
    probe(case, callers["staff"].headers, probe_server, failures, role="staff")


@REVOKE.parametrize()
def test_probe_token_revoke(case, callers, probe_server, failures, django_db_blocker):
    """The token revoke for each caller, each request with a token of its own (which it revokes)."""
    from accounts.models import User
    from accounts.services import api_token_create

    for caller in callers.values():
        headers = {}
        if caller.email is not None:
            with django_db_blocker.unblock():  # committed: the server must find it
                _, token = api_token_create(user=User.objects.get(email=caller.email))
            headers = {"Authorization": f"Token {token}"}
        probe(case, headers, probe_server, failures, role=caller.role)


def test_throttled_answers_are_documented(probe_database, tmp_path):
    """With low rates each throttle answers 429, and each 429 is documented with its body (against a server of
    its own: the probe's has its throttles out of the way). The anonymous rate is not among them: every operation
    but the token's asks for credentials, refused (401) before any throttle counts."""
    url, callers = probe_database
    api = probe_schema(coverage=False)
    rates = {"API_THROTTLE_USER": "2/minute", "API_THROTTLE_LOGIN": "2/minute"}
    env = {"DATABASE_URL": url, **SERVER_ENV, **rates}
    login = {"email": "probe-viewer@example.com", "password": "wrong"}
    throttled = [
        ("user", "GET", "/api/v1/users/me/", callers["viewer"].headers, {}),
        ("login", "POST", "/api/v1/auth/token/", {}, {"body": login, "media_type": "application/json"}),
    ]
    with daphne_server(name="throttled-server", log_dir=tmp_path, env=env) as server:
        for scope, method, path, headers, body in throttled:
            operation = api[path][method]
            statuses = []
            for _ in range(3):
                response = operation.Case(**body).call_and_validate(base_url=server.url, headers=headers, checks=CHECKS)
                statuses.append(response.status_code)
            assert statuses[-1] == 429, (scope, statuses)
            assert response.json()["error"] == "throttled", response.json()
            assert response.headers.get("retry-after"), response.headers
