"""The live broadcast hook, through the real Redis channel layer of the test settings."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from common.channels import group_has_members
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
    assert async_to_sync(group_has_members)(layer, readings_group(watched.pk))
    assert not async_to_sync(group_has_members)(layer, readings_group(unwatched.pk))
