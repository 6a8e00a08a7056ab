"""The first socket after a Redis restart connects (the probe found it answered 500: the channel layer's pool handed
out a connection the restart had closed). Our own redis-server on a free port: the shared one is never restarted."""

import shutil
import socket
import subprocess
import time

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from accounts.tests.factories import UserFactory
from config.settings.base import redis_channel_layers
from sensors.ingest import readings_ingest
from sensors.models import Transport
from sensors.tests.factories import SensorFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("role_groups"),
]

PATH = "/ws/sensors/restart.gauge/readings/"


class OwnRedis:
    """A redis-server of this test alone, without persistence (a restart loses everything, as the probe's did)."""

    def __init__(self, tmp_path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (the test starts its own to restart it)")
        self.binary, self.dir = binary, tmp_path
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("our redis-server did not start")
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path, settings):
    server = OwnRedis(tmp_path)
    server.start()
    settings.CHANNEL_LAYERS = redis_channel_layers(server.url)  # Channels drops its layers when this changes
    yield server
    server.stop()


async def open_socket(ws_open, headers):
    communicator, first = await ws_open(PATH, headers)
    assert communicator is not None, first
    assert first["type"] == "history"
    return communicator


async def test_the_first_socket_after_a_redis_restart_connects(own_redis, ws_headers, ws_open):
    from asgiref.sync import sync_to_async

    await sync_to_async(SensorFactory)(key="restart.gauge")
    user = await sync_to_async(UserFactory)(viewer=True)
    headers = await sync_to_async(ws_headers)(user=user)
    layer = get_channel_layer()
    assert own_redis.url in str(layer.hosts)

    before = await open_socket(ws_open, headers)
    await ingest(0)  # the broadcast opens the web process's own connection (common.channels) before the restart
    assert (await before.receive_json_from(timeout=5))["type"] == "readings"
    await before.disconnect()
    own_redis.stop()
    own_redis.start()
    after = await open_socket(ws_open, headers)  # the probe's 500
    await ingest(1)  # and the broadcasts after the restart reach it
    assert (await after.receive_json_from(timeout=5))["readings"][0]["value"] == 1.0
    await after.disconnect()


@database_sync_to_async
def ingest(number: int) -> None:
    message = {"sensor": "restart.gauge", "timestamp": f"2024-12-01T00:00:{number:02d}Z", "value": float(number)}
    assert readings_ingest(messages=[message], transport=Transport.REST).stored == 1


async def test_a_socket_while_redis_is_down_is_refused_with_a_close_code(own_redis, ws_headers, ws_open):
    """Never a 500: the socket is accepted and closed with 4503 (try again later), its error message first."""
    from asgiref.sync import sync_to_async

    await sync_to_async(SensorFactory)(key="restart.gauge")
    user = await sync_to_async(UserFactory)(viewer=True)
    headers = await sync_to_async(ws_headers)(user=user)
    own_redis.stop()
    communicator, outcome = await ws_open(PATH, headers, timeout=15)
    assert (communicator, outcome) == (None, 4503)


async def test_revoking_a_token_while_redis_is_down_still_revokes_it(own_redis):
    """The sockets' notice is sent after the commit and may fail with Redis away: the revocation stands and answers
    204 (the sockets' periodic check then finds it)."""
    from asgiref.sync import sync_to_async
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    from accounts.services import api_token_create

    def revoke() -> int:
        _, raw = api_token_create(user=UserFactory(viewer=True))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
        return client.post("/api/v1/auth/token/revoke/").status_code

    own_redis.stop()
    assert await sync_to_async(revoke)() == 204
    assert not await sync_to_async(AuthToken.objects.exists)()
