"""The live broadcast hook, through the real Redis channel layer of the test settings."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from sensors.broadcast import READINGS_EVENT, readings_group
from sensors.ingest import readings_ingest
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def layer(redis_url):
    return get_channel_layer()


@pytest.fixture
def listen(layer):
    """`listen(sensor)`: a new channel in the sensor's readings group, left again after the test."""
    joined = []

    def join(sensor) -> str:
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(readings_group(sensor.pk), channel)
        joined.append((readings_group(sensor.pk), channel))
        return channel

    yield join
    for group, channel in joined:  # leave no member behind in the shared Redis
        async_to_sync(layer.group_discard)(group, channel)


def receive(layer, channel) -> dict:
    async def one():
        import asyncio

        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    return async_to_sync(one)()


def test_one_message_per_sensor_per_batch_with_only_the_stored_readings(
    layer, listen, django_capture_on_commit_callbacks
):
    gas, other = SensorFactory(key="gas-1"), SensorFactory(key="gas-2")
    gas_channel, other_channel = listen(gas), listen(other)
    readings_ingest(messages=[{"sensor": "gas-1", "value": 0, "timestamp": "2024-12-01T00:00:00Z"}], transport="rest")

    with django_capture_on_commit_callbacks(execute=True):
        readings_ingest(
            messages=[
                {"sensor": "gas-1", "value": 2, "timestamp": "2024-12-01T00:02:00Z"},
                {"sensor": "gas-1", "value": 0, "timestamp": "2024-12-01T00:00:00Z"},  # duplicate: not sent
                {"sensor": "gas-2", "value": 9, "timestamp": "2024-12-01T00:00:00Z"},
                {"sensor": "gas-1", "value": 1, "timestamp": "2024-12-01T00:01:00Z"},
            ],
            transport="rest",
        )

    message = receive(layer, gas_channel)
    assert message == {
        "type": READINGS_EVENT,
        "sensor": "gas-1",
        "readings": [
            {"timestamp": "2024-12-01T00:01:00+00:00", "value": 1.0},
            {"timestamp": "2024-12-01T00:02:00+00:00", "value": 2.0},
        ],
    }
    assert receive(layer, other_channel)["readings"] == [{"timestamp": "2024-12-01T00:00:00+00:00", "value": 9.0}]


def test_nothing_is_sent_before_commit(layer, listen, django_capture_on_commit_callbacks):
    sensor = SensorFactory(key="t")
    channel = listen(sensor)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        readings_ingest(messages=[{"sensor": "t", "value": 1, "timestamp": "2024-12-01T00:00:00Z"}], transport="rest")
    assert len(callbacks) == 1

    async def nothing():
        import asyncio

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel), timeout=0.3)

    async_to_sync(nothing)()


def test_groups_nobody_watches_cost_no_message(layer, listen, monkeypatch, django_capture_on_commit_callbacks):
    from sensors import broadcast

    watched, unwatched = SensorFactory(key="watched"), SensorFactory(key="unwatched")
    listen(watched)
    built = []
    real = broadcast._messages
    monkeypatch.setattr(
        broadcast, "_messages", lambda sensor_id, readings: built.append(sensor_id) or real(sensor_id, readings)
    )

    with django_capture_on_commit_callbacks(execute=True):
        readings_ingest(
            messages=[
                {"sensor": "watched", "value": 1, "timestamp": "2024-12-01T00:00:00Z"},
                {"sensor": "unwatched", "value": 2, "timestamp": "2024-12-01T00:00:00Z"},
            ],
            transport="rest",
        )

    assert built == [watched.pk]
    assert async_to_sync(broadcast.group_has_members)(layer, readings_group(watched.pk))
    assert not async_to_sync(broadcast.group_has_members)(layer, readings_group(unwatched.pk))


def test_membership_on_the_in_memory_layer_of_embedded_mode():
    from channels.layers import InMemoryChannelLayer

    from sensors import broadcast

    memory = InMemoryChannelLayer()

    async def check():
        channel = await memory.new_channel()
        assert not await broadcast.group_has_members(memory, "sensors.1.readings")
        await memory.group_add("sensors.1.readings", channel)
        assert await broadcast.group_has_members(memory, "sensors.1.readings")

    async_to_sync(check)()


def test_messages_dropped_past_a_channels_capacity_are_logged_as_a_warning(redis_url, caplog):
    """channels-redis drops a group message for a full channel without an error; the settings' logging filter
    makes its INFO note a WARNING that names the group."""
    import asyncio
    import logging

    from channels_redis.core import RedisChannelLayer

    small = RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 15}], capacity=2)
    group = "sensors.capacity-test.readings"

    async def overfill() -> list[dict]:
        channel = await small.new_channel()
        await small.group_add(group, channel)
        try:
            for n in range(4):
                await small.group_send(group, {"type": READINGS_EVENT, "n": n})
            return [await asyncio.wait_for(small.receive(channel), timeout=5) for _ in range(2)]
        finally:
            await small.group_discard(group, channel)
            await small.flush()

    with caplog.at_level(logging.WARNING):
        kept = async_to_sync(overfill)()

    assert [message["n"] for message in kept] == [0, 1]  # 2 and 3 were dropped
    dropped = [r for r in caplog.records if getattr(r, "event", None) == "live_messages_dropped"]
    assert [(r.levelname, r.group, r.channels_over_capacity) for r in dropped] == [
        ("WARNING", group, 1),
        ("WARNING", group, 1),
    ]
    assert "live messages dropped: 1 of 1 channels over capacity in group " + group in caplog.text
