"""Live detection streams end to end: `config.asgi.application`, the real Redis channel layer, and the services that
produce the items (`readings_detect` for detections and sensor events, `system_event_emit` for system events).

The consumers read the database from another thread, so these tests commit for real (`transaction=True`), and the
broadcasts go out when the services' transactions commit, as in production.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory
from detection.consumers import SystemEventsConsumer
from detection.models import Detection, SensorEvent, Status, SystemEvent
from detection.services.detect import readings_detect
from detection.services.events import system_event_emit
from detection.tests.factories import DAY, normal_series, seed_baseline
from sensors.models import Reading
from sensors.services.device_keys import device_key_create
from sensors.tests.factories import SensorFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("role_groups", "live_groups_restored", "baseline_method"),
]

KEY = "rig-7.flow:east"
DETECTIONS = f"/ws/sensors/{KEY}/detections/"
EVENTS = f"/ws/sensors/{KEY}/events/"
SYSTEM = "/ws/events/system/"
START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


@pytest.fixture
def headers(ws_headers):
    return sync_to_async(ws_headers)


@pytest.fixture
def sensor():
    seed_baseline()  # the default seed (seed-mid) every new sensor starts from
    return SensorFactory(key=KEY)


@pytest.fixture
def viewer():
    return UserFactory(viewer=True)


def series(n: int, *leaks: tuple[int, int]) -> np.ndarray:
    """Normal daily cycles with a slow rise (a leak) over each [a, b) of reading indexes."""
    values = normal_series(n, start=14 * DAY, seed=1)
    for a, b in leaks:
        values[a:b] += np.linspace(0, 15.0, b - a)
    return values


@database_sync_to_async
def detect(sensor, values: np.ndarray, first: int, last: int) -> None:
    """Store readings [first, last) and run the detection service on them, as the ingest hand-off's task does."""
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + i * STEP, value=float(values[i])) for i in range(first, last)
    )
    result = readings_detect(sensors={sensor.pk: START + first * STEP})
    assert result.detected == last - first, result


@database_sync_to_async
def stored_detections(sensor, first: int, last: int) -> list[dict]:
    rows = Detection.objects.filter(
        sensor=sensor, timestamp__gte=START + first * STEP, timestamp__lt=START + last * STEP
    ).order_by("timestamp")
    return [
        {"timestamp": d.timestamp.isoformat(), "level": d.level, "distance": d.distance, "status": d.status}
        for d in rows
    ]


@database_sync_to_async
def stored_events(sensor) -> list[tuple[int, str, int | None]]:
    return list(SensorEvent.objects.filter(sensor=sensor).order_by("id").values_list("id", "kind", "anomaly_id"))


@database_sync_to_async
def emit(message: str, **kwargs) -> SystemEvent:
    return system_event_emit(kind=kwargs.pop("kind", SystemEvent.Kind.INFO), message=message, job="test", **kwargs)


async def receive_items(communicator, items: str, count: int, *, sensor: str | None = KEY) -> list[dict]:
    """Live messages until `count` items arrived; each message is checked for shape."""
    envelope = {"sensor": sensor} if sensor else {}
    received: list[dict] = []
    while len(received) < count:
        message = await communicator.receive_json_from(timeout=10)
        assert message == {"type": items, **envelope, items: message[items]}, message
        assert message[items], "no empty live message"
        received.extend(message[items])
    return received


async def test_detections_history_then_each_detected_batch(sensor, viewer, headers, ws_open):
    values = series(700, (400, 500))
    await detect(sensor, values, 0, 300)
    communicator, history = await ws_open(f"{DETECTIONS}?history=5", await headers(user=viewer))

    assert history == {"type": "history", "sensor": KEY, "detections": await stored_detections(sensor, 295, 300)}
    assert [d["timestamp"] for d in history["detections"]] == [(START + i * STEP).isoformat() for i in range(295, 300)]

    await detect(sensor, values, 300, 500)  # two detection batches: two live messages, in order
    await detect(sensor, values, 500, 700)
    live = await receive_items(communicator, "detections", 400)
    assert live == await stored_detections(sensor, 300, 700)
    assert [d["timestamp"] for d in live] == [(START + i * STEP).isoformat() for i in range(300, 700)]
    assert Status.CRITICAL in {d["status"] for d in live[100:200]}  # the leak, as the detector saw it
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_sensor_events_history_then_each_state_change(sensor, viewer, headers, ws_open):
    values = series(1100, (400, 500), (800, 900))
    await detect(sensor, values, 0, 700)  # the first leak: critical, then ok once it is over
    first = await stored_events(sensor)
    assert [kind for _, kind, _ in first] == ["critical", "ok"]

    _, token = await database_sync_to_async(api_token_create)(user=viewer)
    communicator, history = await ws_open(EVENTS, await headers(token=token))
    assert history["type"] == "history"
    assert history["sensor"] == KEY
    assert [(e["id"], e["kind"], e["anomaly"]) for e in history["events"]] == first

    await detect(sensor, values, 700, 1100)  # the second leak
    live = await receive_items(communicator, "events", 2)
    second = (await stored_events(sensor))[2:]
    assert [(e["id"], e["kind"], e["anomaly"]) for e in live] == second
    assert [kind for _, kind, _ in second] == ["critical", "ok"]
    assert second[0][2] != first[0][2], "a leak long after the first is a new anomaly"
    assert live[0]["at"] > (START + 800 * STEP).isoformat()
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_system_events_history_then_each_new_event(sensor, viewer, headers, ws_open):
    for n in range(3):
        await emit(f"old {n}")
    communicator, history = await ws_open(f"{SYSTEM}?history=2", await headers(user=viewer))
    assert list(history) == ["type", "events"]  # no sensor in the envelope
    assert [e["message"] for e in history["events"]] == ["old 1", "old 2"]

    event = await emit("baselines selected", kind=SystemEvent.Kind.ALERT_SUCCESS, sensor=sensor, data={"n": 1})
    [live] = await receive_items(communicator, "events", 1, sensor=None)
    assert live == {
        "id": event.pk,
        "kind": "alert_success",
        "job": "test",
        "sensor": KEY,
        "message": "baselines selected",
        "data": {"n": 1},
        "created_at": event.created_at.isoformat(),
    }
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_system_events_with_no_gap_and_no_duplicate(viewer, headers, ws_open, monkeypatch):
    """Events land in the race window on purpose: one after the socket joined its group but before the history is
    read (in the history *and* broadcast to it: the live copy is dropped by id), one right after (live only)."""
    real_history = SystemEventsConsumer.history

    async def racing_history(self, target, limit):
        await emit("during")
        items = await real_history(self, target, limit)
        await emit("after")
        return items

    monkeypatch.setattr(SystemEventsConsumer, "history", racing_history)
    communicator, history = await ws_open(SYSTEM, await headers(user=viewer))
    assert [e["message"] for e in history["events"]] == ["during"]
    live = await receive_items(communicator, "events", 1, sensor=None)
    assert [e["message"] for e in live] == ["after"]
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


@pytest.mark.parametrize("path", [DETECTIONS, EVENTS, SYSTEM])
async def test_refused_callers(sensor, headers, ws_open, path):
    assert await ws_open(path, await headers()) == (None, 4401)
    assert await ws_open(path, await headers(user=await database_sync_to_async(UserFactory)())) == (None, 4403)
    _, raw = await database_sync_to_async(device_key_create)(name="probe", sensor=sensor)
    assert await ws_open(path, await headers(device_key=raw)) == (None, 4403)


@pytest.mark.parametrize("path", ["/ws/sensors/no.such:sensor/detections/", "/ws/sensors/no.such:sensor/events/"])
async def test_unknown_sensor_is_closed_with_4404_after_authentication(viewer, headers, ws_open, path):
    assert await ws_open(path, await headers(user=viewer)) == (None, 4404)
    assert await ws_open(path, await headers()) == (None, 4401)
