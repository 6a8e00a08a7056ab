"""The dashboard's summary sockets end to end: `config.asgi.application`, the real channel layer (Redis in CI), and
the services whose broadcasts they summarise (ingestion, detection's broadcasts, system events)."""

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from detection.broadcast import detections_broadcast
from detection.models import Detection, SensorEvent, Status
from detection.services.events import sensor_events_store, system_event_emit
from sensors.ingest import readings_ingest
from sensors.models import Sensor, Transport
from sensors.tests.factories import PlatformFactory, SensorFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("role_groups", "live_groups_restored"),
]

OVERVIEW = "/ws/dashboard/overview/"
EVENTS = "/ws/dashboard/events/"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def headers(ws_headers):
    return sync_to_async(ws_headers)


@database_sync_to_async
def make_user(**role):
    from accounts.tests.factories import UserFactory

    return UserFactory(**role)


@database_sync_to_async
def make_sensors():
    alpha, bravo = PlatformFactory(slug="alpha"), PlatformFactory(slug="bravo")
    a = SensorFactory(key="a-temp", platform=alpha, kind="temperature")
    b = SensorFactory(key="b-gas", platform=bravo, kind="gas")
    Sensor.objects.filter(pk=a.pk).update(latest_timestamp=NOW, latest_value=12.5)
    Detection.objects.create(sensor=a, timestamp=NOW, level=150.0, status=Status.WARNING)
    return a, b


@database_sync_to_async
def ingest(key: str, *values: tuple[datetime, float]) -> None:
    messages = [{"sensor": key, "value": v, "timestamp": t.isoformat()} for t, v in values]
    result = readings_ingest(messages=messages, transport=Transport.REST, decoded=True)
    assert result.stored == len(values)


async def test_overview_history_then_newest_reading_and_detection(headers, ws_open):
    a, b = await make_sensors()
    viewer = await make_user(viewer=True)
    socket, first = await ws_open(OVERVIEW, await headers(user=viewer))
    assert first == {
        "type": "history",
        "sensors": [
            {"sensor": "a-temp", "timestamp": NOW.isoformat(), "value": 12.5, "status": "warning", "level": 150.0},
            {"sensor": "b-gas", "timestamp": None, "value": None, "status": None, "level": None},
        ],
    }
    # One ingest batch: the summary carries the newest reading of it only (by timestamp, not arrival).
    later = NOW + timedelta(minutes=1)
    await ingest("b-gas", (later, 3.0), (NOW, 2.0))
    assert await socket.receive_json_from(timeout=5) == {
        "type": "sensors",
        "sensors": [{"sensor": "b-gas", "timestamp": later.isoformat(), "value": 3.0}],
    }
    # Detections: the newest judged one (late ones are skipped).
    await sync_to_async(detections_broadcast)(
        {
            (a.pk, a.key): [
                Detection(timestamp=NOW, level=20.0, status=Status.OK),
                Detection(timestamp=later, level=260.0, status=Status.CRITICAL),
                Detection(timestamp=later + timedelta(seconds=1), level=None, status=Status.LATE),
            ]
        }
    )
    assert await socket.receive_json_from(timeout=5) == {
        "type": "sensors",
        "sensors": [{"sensor": "a-temp", "status": "critical", "level": 260.0, "detected_at": later.isoformat()}],
    }
    await socket.disconnect()


async def test_overview_filters_choose_the_watched_sensors(headers, ws_open):
    await make_sensors()
    viewer = await make_user(viewer=True)
    socket, first = await ws_open(f"{OVERVIEW}?platform=alpha", await headers(user=viewer))
    assert [s["sensor"] for s in first["sensors"]] == ["a-temp"]
    await ingest("b-gas", (NOW, 1.0))  # not watched by this socket
    await ingest("a-temp", (NOW + timedelta(minutes=5), 13.0))
    message = await socket.receive_json_from(timeout=5)
    assert message["sensors"][0]["sensor"] == "a-temp"
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()
    _, code = await ws_open(f"{OVERVIEW}?kind=lava", await headers(user=viewer))
    assert code == 4404


async def test_summary_sockets_refuse_as_the_readers_streams(headers, ws_open):
    await make_sensors()
    nobody = await make_user()
    for path in (OVERVIEW, EVENTS):
        assert (await ws_open(path, await headers()))[1] == 4401
        assert (await ws_open(path, await headers(user=nobody)))[1] == 4403


async def test_events_socket_forwards_sensor_and_system_events(headers, ws_open):
    a, b = await make_sensors()
    viewer = await make_user(viewer=True)
    await database_sync_to_async(system_event_emit)(kind="info", message="before the socket", job="fetch_rates")
    socket, first = await ws_open(f"{EVENTS}?history=5", await headers(user=viewer))
    assert [e["event_message"] for e in first["events"]] == ["before the socket"]
    assert first["events"][0]["source"] == "system"

    await database_sync_to_async(system_event_emit)(kind="alert_critical", message="job failed", sensor=b)
    message = await socket.receive_json_from(timeout=5)
    [item] = message["events"]
    assert (item["source"], item["event_kind"], item["sensor_key"], item["event_message"]) == (
        "system", "alert_critical", "b-gas", "job failed",
    )  # fmt: skip

    event = SensorEvent(sensor=a, kind="critical", at=NOW, level=250.0, message="a-temp: critical at level 250 %")
    await database_sync_to_async(sensor_events_store)([("a-temp", event)])
    [item] = (await socket.receive_json_from(timeout=5))["events"]
    assert (item["source"], item["event_kind"], item["sensor_key"]) == ("sensor", "critical", "a-temp")
    assert item["event_at"] == NOW.isoformat()
    await socket.disconnect()


async def test_events_socket_applies_the_page_filters(headers, ws_open):
    a, b = await make_sensors()
    viewer = await make_user(viewer=True)
    socket, first = await ws_open(f"{EVENTS}?source=sensor&sensor=a-temp", await headers(user=viewer))
    assert first == {"type": "history", "events": []}
    await database_sync_to_async(system_event_emit)(kind="info", message="a system event")
    other = SensorEvent(sensor=b, kind="critical", at=NOW, message="b-gas: critical")
    mine = SensorEvent(sensor=a, kind="ok", at=NOW, message="a-temp: alarm over")
    await database_sync_to_async(sensor_events_store)([("b-gas", other)])
    await database_sync_to_async(sensor_events_store)([("a-temp", mine)])
    [item] = (await socket.receive_json_from(timeout=5))["events"]
    assert item["event_message"] == "a-temp: alarm over"
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()
    _, code = await ws_open(f"{EVENTS}?kind=boom", await headers(user=viewer))
    assert code == 4404
