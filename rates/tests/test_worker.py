"""End to end with a real Celery worker: POST an update, the worker retries a failing provider with backoff,
and the progress URL reports the result. The provider is a local HTTP server answering from the recordings."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.urls import reverse

from accounts.tests.factories import UserFactory
from config.celery_app import app as celery_app
from conftest import celery_worker_process
from rates.models import ExchangeRate, RateFetch
from rates.tests.conftest import fixture_bytes

# The worker writes through its own connections, so the test's rows must be committed; the flush afterwards
# removes the data migrations' rows, which serialized_rollback puts back.
# (On SQLite the test cannot run at all, and restoring the serialized rows there collides with the content types
# an earlier transactional test left: so only on PostgreSQL.)
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=connection.vendor == "postgresql")


class FlakyEcb(BaseHTTPRequestHandler):
    """Answers 503 to the first request, then the recorded daily file."""

    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        FlakyEcb.requests.append(self.path)
        if len(FlakyEcb.requests) == 1:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"Service unavailable")
            return
        body = fixture_bytes("ecb_daily.xml")
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return


@pytest.fixture
def ecb_server():
    FlakyEcb.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyEcb)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def rates_worker(redis_url, ecb_server, process_database_url):
    """A real `celery worker` on the test broker and the test database, talking to the local ECB."""
    env = {
        "CI": "true",
        "DATABASE_URL": process_database_url,
        "REDIS_URL": redis_url,
        "RATES_PROVIDERS": "ecb",
        "RATES_ECB_URL": ecb_server,
        "RATES_RETRY_BACKOFF": "0.5",
        "RATES_RETRY_MAX": "3",
    }
    celery_app.control.purge()  # jobs left queued by an earlier, interrupted run are not this test's
    with celery_worker_process(name="rates", env=env) as process:
        yield process


def test_update_job_retries_with_backoff_and_reports_progress(client_as, rates_worker, settings):
    settings.RATES_PROVIDERS = ["ecb"]
    operator = client_as(UserFactory(operator=True))
    response = operator.post(reverse("rates-api:rates-update"), {})
    assert response.status_code == 202
    progress_url = response.json()["progress_url"]
    viewer = client_as(UserFactory(viewer=True))
    deadline = time.monotonic() + 60
    while True:
        body = viewer.get(progress_url).json()
        if body["complete"]:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert body["success"] is True, body
    assert body["result"]["provider"] == "ecb"
    assert body["result"]["rows"] == 12
    assert len(FlakyEcb.requests) == 2  # the first answer failed, the retry succeeded
    attempts = list(RateFetch.objects.order_by("started_at").values_list("status", "started_at"))
    assert [status for status, _ in attempts] == ["failed", "success"]
    # The retry waited for its backoff (0.5 s) before asking again.
    assert (attempts[1][1] - attempts[0][1]).total_seconds() >= 0.5
    assert ExchangeRate.objects.filter(provider="ecb").count() == 12
