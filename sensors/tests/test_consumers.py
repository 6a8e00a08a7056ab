"""Live reading streams end to end: `config.asgi.application`, the real Redis channel layer, the ingestion service.

The consumer reads the database from another thread (`database_sync_to_async`), so these tests commit for real
(`transaction=True`); the `role_groups` fixture makes the role groups again after each test's flush.
"""

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory
from sensors.broadcast import readings_group
from sensors.consumers import SensorReadingsConsumer
from sensors.ingest import readings_ingest
from sensors.models import Transport
from sensors.services.device_keys import device_key_create
from sensors.tests.factories import SensorFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("role_groups", "live_groups_restored"),
]

KEY = "rig-7.gas:north"  # dots and colons are valid in keys and in the URL
PATH = f"/ws/sensors/{KEY}/readings/"
T0 = datetime(2024, 12, 1, tzinfo=UTC)


def reading(i: int) -> dict:
    return {"timestamp": (T0 + timedelta(seconds=i)).isoformat(), "value": float(i)}


def messages(numbers) -> list[dict]:
    return [{"sensor": KEY, **reading(i)} for i in numbers]


@database_sync_to_async
def ingest(numbers) -> None:
    result = readings_ingest(messages=messages(numbers), transport=Transport.REST)
    assert result.stored == len(numbers), result


@database_sync_to_async
def make(factory, **kwargs):
    return factory(**kwargs)


@pytest.fixture
def headers(ws_headers):
    return sync_to_async(ws_headers)


@pytest.fixture
def sensor():
    return SensorFactory(key=KEY)


@pytest.fixture
def viewer():
    return UserFactory(viewer=True)


async def receive_readings(communicator, count: int, *, timeout: float = 10) -> list[dict]:
    """Live messages until `count` readings arrived; each message is checked for shape."""
    received: list[dict] = []
    while len(received) < count:
        message = await communicator.receive_json_from(timeout=timeout)
        assert (message["type"], message["sensor"]) == ("readings", KEY), message
        assert message["readings"], "no empty live message"
        received.extend(message["readings"])
    return received


async def group_members(sensor) -> set[bytes]:
    layer = get_channel_layer()
    group = readings_group(sensor.pk)
    return set(await layer.connection(layer.consistent_hash(group)).zrange(layer._group_key(group), 0, -1))


async def test_two_clients_each_receive_every_reading_of_a_burst_in_order(sensor, viewer, headers, ws_open):
    _, token = await database_sync_to_async(api_token_create)(user=await make(UserFactory, operator=True))
    before = await group_members(sensor)  # members a crashed earlier run may have left in the shared Redis
    browser, first_browser = await ws_open(PATH, await headers(user=viewer))
    script, first_script = await ws_open(PATH, await headers(token=token))
    assert first_browser == first_script == {"type": "history", "sensor": KEY, "readings": []}
    ours = await group_members(sensor) - before
    assert len(ours) == 2, "each socket has its own channel in the group (none shares or steals messages)"

    # 1,000 readings as a consumer stores them: batches of several sizes, each shuffled inside (as devices send).
    numbers = list(range(1000))
    start = 0
    for size in (1, 49, 150, 300, 500):
        batch = numbers[start : start + size]
        random.shuffle(batch)
        await ingest(batch)
        start += size

    expected = [reading(i) for i in numbers]
    for communicator in (browser, script):
        assert await receive_readings(communicator, 1000) == expected
        assert await communicator.receive_nothing(timeout=0.3)
    for communicator in (browser, script):
        await communicator.disconnect()
    assert not (await group_members(sensor) & ours), "closed sockets leave the group"


async def test_a_batch_larger_than_a_broadcast_chunk_arrives_whole_and_in_order(sensor, viewer, headers, ws_open):
    communicator, _ = await ws_open(PATH, await headers(user=viewer))
    await ingest(range(2500))  # one ingest call, sent as 1,000 + 1,000 + 500

    sizes = []
    received = []
    while len(received) < 2500:
        message = await communicator.receive_json_from(timeout=10)
        sizes.append(len(message["readings"]))
        received.extend(message["readings"])
    assert sizes == [1000, 1000, 500]
    assert received == [reading(i) for i in range(2500)]
    await communicator.disconnect()


async def test_history_first_then_live_with_no_gap_and_no_duplicate(sensor, viewer, headers, ws_open, monkeypatch):
    """Batches land in the race window on purpose: one after the socket joined its group but before the history
    is read (so it is in the history *and* broadcast to the socket), one right after the read (live only)."""
    await ingest(range(0, 10))
    real_history = SensorReadingsConsumer.history

    async def racing_history(self, target, limit):
        await ingest(range(10, 15))  # joined already: broadcast to this socket, and in the history below
        items = await real_history(self, target, limit)
        await ingest(range(15, 20))  # after the read: only live can carry it
        return items

    monkeypatch.setattr(SensorReadingsConsumer, "history", racing_history)
    communicator, history = await ws_open(f"{PATH}?history=12", await headers(user=viewer))

    assert history["type"] == "history"
    assert history["readings"] == [reading(i) for i in range(3, 15)]  # the last 12, oldest first
    await ingest(range(20, 25))
    live = await receive_readings(communicator, 10)
    assert live == [reading(i) for i in range(15, 25)]  # 10-14 came twice and were dropped once
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_a_live_message_is_trimmed_to_what_the_history_did_not_hold(
    sensor, viewer, headers, ws_open, monkeypatch
):
    real_history = SensorReadingsConsumer.history

    async def racing_history(self, target, limit):
        items = await real_history(self, target, limit)  # empty
        return items + [reading(1)]  # as if reading 1 had been committed just before the read

    monkeypatch.setattr(SensorReadingsConsumer, "history", racing_history)
    communicator, history = await ws_open(PATH, await headers(user=viewer))
    assert history["readings"] == [reading(1)]
    await ingest([0, 1, 2])
    assert await communicator.receive_json_from(timeout=5) == {
        "type": "readings",
        "sensor": KEY,
        "readings": [reading(0), reading(2)],
    }
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", list(range(50, 150))),  # default: the last 100
        ("?history=3", [147, 148, 149]),
        ("?history=0", []),
        ("?history=100000", list(range(150 - 120, 150))),  # clamped to the maximum (120 in this test)
    ],
)
async def test_history_size_from_the_query(sensor, viewer, headers, ws_open, monkeypatch, query, expected):
    monkeypatch.setattr(SensorReadingsConsumer, "history_max", 120)
    await ingest(range(150))
    communicator, history = await ws_open(PATH + query, await headers(user=viewer))
    assert history == {"type": "history", "sensor": KEY, "readings": [reading(i) for i in expected]}
    await communicator.disconnect()


@pytest.mark.parametrize("query", ["?history=abc", "?history=-1", "?history=1.5"])
async def test_a_bad_history_size_is_closed_with_4400(sensor, viewer, headers, ws_open, query):
    assert await ws_open(PATH + query, await headers(user=viewer)) == (None, 4400)


async def test_anonymous_socket_is_closed_with_4401(sensor, headers, ws_open):
    assert await ws_open(PATH, await headers()) == (None, 4401)


async def test_a_user_without_a_role_is_closed_with_4403(sensor, headers, ws_open):
    user = await make(UserFactory)
    assert await ws_open(PATH, await headers(user=user)) == (None, 4403)


async def test_unknown_sensor_is_closed_with_4404_after_authentication(headers, ws_open, viewer):
    assert await ws_open("/ws/sensors/no.such:sensor/readings/", await headers(user=viewer)) == (None, 4404)
    # Anonymous callers learn nothing about which sensors exist.
    assert await ws_open("/ws/sensors/no.such:sensor/readings/", await headers()) == (None, 4401)


async def test_token_in_the_authorization_header(sensor, viewer, headers, ws_open):
    _, token = await database_sync_to_async(api_token_create)(user=viewer)
    communicator, history = await ws_open(PATH, await headers(token=token))
    assert history["type"] == "history"
    await communicator.disconnect()

    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # never the token itself
    assert await ws_open(PATH, await headers(token=wrong)) == (None, 4401)
    assert await ws_open(PATH, [(b"authorization", b"Token")]) == (None, 4401)


async def test_an_expired_token_is_refused(sensor, viewer, headers, ws_open):
    row, token = await database_sync_to_async(api_token_create)(user=viewer, ttl=timedelta(hours=1))
    row.expiry = timezone.now() - timedelta(seconds=1)
    await database_sync_to_async(row.save)()
    assert await ws_open(PATH, await headers(token=token)) == (None, 4401)


async def test_a_token_needs_the_viewer_role_too(sensor, headers, ws_open):
    _, token = await database_sync_to_async(api_token_create)(user=await make(UserFactory))
    assert await ws_open(PATH, await headers(token=token)) == (None, 4403)


async def test_device_keys_do_not_open_sockets(sensor, headers, ws_open):
    _, raw = await database_sync_to_async(device_key_create)(name="probe", sensor=sensor)
    assert await ws_open(PATH, await headers(device_key=raw)) == (None, 4403)
    assert await ws_open(PATH, await headers(device_key="dk_wrong")) == (None, 4401)


async def test_a_session_from_another_site_or_without_origin_is_refused_at_the_handshake(
    sensor, viewer, headers, ws_open
):
    assert await ws_open(PATH, await headers(user=viewer, origin="https://evil.example")) == (None, "handshake")
    without_origin = [h for h in await headers(user=viewer) if h[0] != b"origin"]
    assert await ws_open(PATH, without_origin) == (None, "handshake")


async def test_membership_is_renewed_before_channels_redis_forgets_it(sensor, viewer, headers, ws_open, monkeypatch):
    monkeypatch.setattr(SensorReadingsConsumer, "membership_refresh_seconds", lambda self: 0.2)
    layer = get_channel_layer()
    key = layer._group_key(readings_group(sensor.pk))
    communicator, _ = await ws_open(PATH, await headers(user=viewer))
    connection = layer.connection(layer.consistent_hash(readings_group(sensor.pk)))
    [(_, joined)] = await connection.zrange(key, 0, -1, withscores=True)
    await asyncio.sleep(0.5)
    [(_, renewed)] = await connection.zrange(key, 0, -1, withscores=True)
    assert renewed > joined + 0.15
    await communicator.disconnect()
    assert await connection.zcard(key) == 0


async def test_an_idle_socket_keeps_receiving(sensor, viewer, headers, ws_open):
    """The channel layer's blocking read (BZPOPMIN, 5 s) outlasts redis-py 8's default socket timeout (5 s):
    without `socket_timeout: None` in the hosts, an idle socket's consumer crashes after 5 s (close 1011)."""
    communicator, _ = await ws_open(PATH, await headers(user=viewer))
    await asyncio.sleep(6.5)
    await ingest([1])
    assert await communicator.receive_json_from(timeout=5) == {
        "type": "readings",
        "sensor": KEY,
        "readings": [reading(1)],
    }
    await communicator.disconnect()
