import json
import os
import re
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import redis
from django.core.management import CommandError, call_command
from django.utils import timezone

from sensors.ingest import readings_ingest
from sensors.models import Platform, Reading, Sensor, Transport
from sensors.services import simulator
from sensors.transports.mqtt import broker_client

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 12, 1, 12, 0, 0, 400000, tzinfo=UTC)
OLD_CONTRACT = re.compile(
    r'^\{"sensor": "sim-[a-z]+-\d+", "value": -?\d+(\.\d+)?, '
    r'"timestamp": "\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?"\}$'
)


def run(*args) -> str:
    out = StringIO()
    call_command("simulate_sensors", *args, "--quiet", stdout=out, stderr=StringIO())
    return out.getvalue()


def counts(summary: str) -> dict[str, int]:
    """The numbers of the summary's readings line."""
    found = re.search(
        r"Readings sent: (\d+) \((\d+) backfilled, (\d+) live ticks\); stored: (\S+), duplicates: (\S+), "
        r"rejected: (\S+)\.",
        summary,
    )
    assert found, summary
    names = ("sent", "backfilled", "ticks", "stored", "duplicates", "rejected")
    return {name: int(value) if value.isdigit() else value for name, value in zip(names, found.groups(), strict=True)}


@pytest.fixture
def frozen_now(monkeypatch):
    """Backfills are anchored at the start time; a fixed one makes a second run hit the same instants."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def test_backfill_through_the_service_stores_every_reading_and_creates_sensors_once(frozen_now):
    args = ("--target", "service", "--sensors", "3", "--backfill", "1", "--interval-step", "60", "--backfill-only")
    first = counts(run(*args, "--seed", "1"))

    assert first == {"sent": 180, "backfilled": 180, "ticks": 0, "stored": 180, "duplicates": 0, "rejected": 0}
    platform = Platform.objects.get(slug="demo")
    sensors = Sensor.objects.order_by("key")
    assert [(s.key, s.kind, s.unit, s.platform) for s in sensors] == [
        ("sim-gas-1", "gas", "ppm", platform),
        ("sim-pressure-1", "pressure", "hPa", platform),
        ("sim-temperature-1", "temperature", "°C", platform),
    ]
    stamps = sorted(Reading.objects.filter(sensor__key="sim-gas-1").values_list("timestamp", flat=True))
    assert stamps[0] == datetime(2024, 12, 1, 11, 0, tzinfo=UTC)
    assert stamps[-1] == datetime(2024, 12, 1, 11, 59, tzinfo=UTC)  # one step before the start, on its grid
    assert {b - a for a, b in zip(stamps, stamps[1:], strict=False)} == {timedelta(minutes=60 / 60)}

    second = counts(run(*args, "--seed", "1"))
    assert second == {"sent": 180, "backfilled": 180, "ticks": 0, "stored": 0, "duplicates": 180, "rejected": 0}
    assert Sensor.objects.count() == 3
    assert Platform.objects.count() == 1
    assert Reading.objects.count() == 180


def test_live_run_keeps_the_pace_for_its_duration():
    started = timezone.now()
    result = counts(run("--target", "service", "--sensors", "2", "--rate", "10", "--duration", "1"))

    # Ticks from the start's 0.1 s grid point up to start + 1 s: 10 or 11 of them, sent on time.
    assert 10 <= result["ticks"] <= 11
    assert result["stored"] == result["sent"] == 2 * result["ticks"]
    stamps = sorted(Reading.objects.filter(sensor__key="sim-gas-1").values_list("timestamp", flat=True))
    assert {round((b - a).total_seconds(), 6) for a, b in zip(stamps, stamps[1:], strict=False)} == {0.1}
    assert started - timedelta(seconds=0.1) <= stamps[0] <= started + timedelta(seconds=0.1)
    assert timezone.now() - stamps[-1] < timedelta(seconds=0.5)


def test_backfill_then_live_continues_the_series_without_gap_or_overlap(frozen_now):
    result = counts(
        run("--target", "service", "--sensors", "1", "--rate", "10", "--backfill", "0.01", "--duration", "0.3")
    )

    assert result["backfilled"] == 360
    assert result["ticks"] >= 3
    assert result["stored"] == result["sent"] == 360 + result["ticks"]
    stamps = sorted(Reading.objects.values_list("timestamp", flat=True))
    assert stamps[0] == datetime(2024, 12, 1, 11, 59, 24, 400000, tzinfo=UTC)
    assert stamps[360] == NOW  # the first live tick
    assert {round((b - a).total_seconds(), 6) for a, b in zip(stamps, stamps[1:], strict=False)} == {0.1}


class StopAfterThreeWrites(simulator.ServiceTarget):
    """Sends SIGTERM to this process from inside the run, where the command's handler is surely in place."""

    writes = 0

    def send(self, samples):
        result = super().send(samples)
        StopAfterThreeWrites.writes += 1
        if StopAfterThreeWrites.writes == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return result


def test_sigterm_stops_cleanly_with_a_summary_and_the_labels(monkeypatch, tmp_path):
    monkeypatch.setitem(simulator.TARGETS, "service", StopAfterThreeWrites)
    StopAfterThreeWrites.writes = 0
    handler_before = signal.getsignal(signal.SIGTERM)
    labels = tmp_path / "labels.json"

    summary = run("--target", "service", "--sensors", "1", "--rate", "50", "--labels-out", str(labels))

    assert "(stopped by signal)" in summary
    assert counts(summary)["ticks"] == 3
    assert Reading.objects.count() == 3
    assert json.loads(labels.read_text()) == []
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_labels_file_lists_the_injected_windows(frozen_now, tmp_path):
    labels = tmp_path / "labels.json"
    summary = run(
        *("--target", "service", "--sensors", "2", "--backfill", "24", "--interval-step", "600", "--backfill-only"),
        *("--leak-probability", "0.5", "--spike-probability", "0", "--shift-probability", "0", "--seed", "3"),
        *("--labels-out", str(labels)),
    )

    windows = json.loads(labels.read_text())
    assert f"Anomalies injected: {len(windows)} leaks, 0 spikes, 0 level shifts." in summary
    assert len(windows) >= 2
    assert any(window["start"] < window["end"] for window in windows)
    for window in windows:
        assert set(window) == {"sensor", "kind", "start", "end"}
        assert window["kind"] == "leak"
        assert window["sensor"] in {"sim-gas-1", "sim-temperature-1"}
        start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
        # Cut at the last backfilled point: a leak that began there is one instant long.
        assert NOW - timedelta(hours=24) <= start <= end <= datetime(2024, 12, 1, 11, 50, tzinfo=UTC)
        stored = Reading.objects.filter(sensor__key=window["sensor"], timestamp__range=(start, end))
        assert stored.exists()


def test_pubsub_publishes_exactly_the_old_contract(redis_url, settings):
    channel = f"sensor_stream_test_{uuid.uuid4().hex}"  # channels span databases: keep clear of real consumers
    settings.SENSORS_PUBSUB_CHANNEL = channel
    client = redis.Redis.from_url(redis_url)
    subscriber = client.pubsub()
    subscriber.subscribe(channel)
    assert subscriber.get_message(timeout=2)["type"] == "subscribe"
    try:
        summary = run(
            *("--target", "pubsub", "--redis-url", redis_url, "--sensors", "2", "--rate", "20", "--duration", "0.3")
        )
        received = []
        while message := subscriber.get_message(ignore_subscribe_messages=True, timeout=0.5):
            received.append(message["data"].decode())
    finally:
        subscriber.close()
        client.close()

    result = counts(summary)
    assert result["stored"] == "n/a"
    assert len(received) == result["sent"] == 2 * result["ticks"] > 0
    for text in received:
        assert OLD_CONTRACT.match(text), text
        assert list(json.loads(text)) == ["sensor", "value", "timestamp"]
    assert {json.loads(text)["sensor"] for text in received} == {"sim-gas-1", "sim-temperature-1"}
    # The sensors exist, so the consumer accepts what was published.
    ingested = readings_ingest(messages=received, transport=Transport.PUBSUB)
    assert (ingested.stored, ingested.rejected) == (len(received), 0)
    assert Sensor.objects.filter(key__startswith="sim-").count() == 2


def test_stream_target_adds_entries_the_stream_consumer_reads(redis_url, settings):
    stream = f"sensor_stream_test_{uuid.uuid4().hex}"
    settings.SENSORS_STREAM_KEY = stream
    client = redis.Redis.from_url(redis_url)
    try:
        summary = run(
            *("--target", "stream", "--redis-url", redis_url, "--sensors", "2", "--rate", "20", "--duration", "0.3")
        )
        entries = client.xrange(stream)
    finally:
        client.delete(stream)
        client.close()

    result = counts(summary)
    assert len(entries) == result["sent"] == 2 * result["ticks"] > 0
    assert all(list(fields) == [b"data"] and OLD_CONTRACT.match(fields[b"data"].decode()) for _, fields in entries)
    ingested = readings_ingest(messages=[fields[b"data"] for _, fields in entries], transport=Transport.STREAM)
    assert (ingested.stored, ingested.rejected) == (len(entries), 0)


def test_mqtt_publishes_json_readings_on_each_sensors_topic_at_qos_1(mqtt_url, settings):
    prefix = f"test-{uuid.uuid4().hex[:12]}"  # topics are broker-wide: keep clear of real consumers
    settings.SENSORS_MQTT_TOPIC_PREFIX = prefix
    subscriber = broker_client(mqtt_url)
    received = []
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.on_message = lambda client, userdata, message: received.append(message)
    subscriber.subscribe(f"{prefix}/#", qos=1)
    assert subscribed.wait(5)
    try:
        summary = run("--target", "mqtt", "--mqtt-url", mqtt_url, "--sensors", "2", "--rate", "20", "--duration", "0.3")
        result = counts(summary)
        deadline = time.monotonic() + 5
        while len(received) < result["sent"] and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()

    assert result["stored"] == "n/a"
    assert len(received) == result["sent"] == 2 * result["ticks"] > 0
    assert {message.topic for message in received} == {f"{prefix}/sim-gas-1", f"{prefix}/sim-temperature-1"}
    assert {message.qos for message in received} == {1}
    for message in received:
        data = json.loads(message.payload)
        assert list(data) == ["value", "timestamp"]
        assert isinstance(data["value"], float)
        assert datetime.fromisoformat(data["timestamp"]).utcoffset() == timedelta(0)
    # What the MQTT consumer would make of them: readings of the topic's sensor, all stored.
    by_sensor = {}
    for message in received:
        by_sensor.setdefault(message.topic.rsplit("/", 1)[1], []).append(message.payload)
    for key, payloads in by_sensor.items():
        ingested = readings_ingest(messages=payloads, transport=Transport.MQTT, sensor_key=key)
        assert (ingested.stored, ingested.rejected) == (len(payloads), 0)


def test_mqtt_without_a_broker_is_a_one_line_error(settings):
    settings.MQTT_URL = ""
    with pytest.raises(CommandError, match=r"^The mqtt target needs a broker: set MQTT_URL or pass --mqtt-url\.$"):
        run("--target", "mqtt", "--duration", "1")
    with pytest.raises(CommandError, match=r"^The MQTT broker at mqtt://u:\*\*\*@127\.0\.0\.1:1 is not reachable"):
        run("--target", "mqtt", "--mqtt-url", "mqtt://u:secret@127.0.0.1:1", "--duration", "1")
    assert not Sensor.objects.exists()


def test_pubsub_without_redis_is_a_one_line_error(settings):
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match=r"^The pubsub target needs Redis: set REDIS_URL or pass --redis-url\.$"):
        run("--target", "pubsub", "--duration", "1")
    with pytest.raises(CommandError, match=r"^Redis at redis://:\*\*\*@127\.0\.0\.1:1/0 is not reachable"):
        run("--target", "pubsub", "--redis-url", "redis://:secret@127.0.0.1:1/0", "--duration", "1")
    assert not Sensor.objects.exists()


def test_default_target_is_the_service_without_redis(settings, frozen_now):
    settings.REDIS_URL = ""
    summary = run("--sensors", "1", "--backfill", "0.5", "--interval-step", "600", "--backfill-only")
    assert "Simulated 1 sensors to service" in summary
    assert counts(summary)["stored"] == 3
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    assert simulator.default_target() == "stream"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sensors", "0"], "--sensors must be from 1"),
        (["--rate", "0"], "--rate must be above 0"),
        (["--duration", "-1"], "--duration must be 0"),
        (["--backfill", "-2"], "--backfill must be 0 or more"),
        (["--interval-step", "0"], "--interval-step must be above 0"),
        (["--backfill-only"], "--backfill-only needs --backfill"),
        (["--leak-probability", "2"], "leak probability must be from 0 to 1"),
        (["--labels-out", "/nonexistent-dir/labels.json"], "No directory"),
        (["--platform", "Not A Slug!"], "Cannot create the simulated sensors"),
    ],
)
def test_bad_options_are_one_readable_line(args, message):
    with pytest.raises(CommandError, match=message):
        run("--target", "service", "--duration", "0.1", *args)
    assert not Reading.objects.exists()
