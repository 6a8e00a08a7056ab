"""MQTT readings end to end, against the real Mosquitto and database.

As in test_pubsub.py, the consumer runs in the main thread (as `manage.py consume_readings` does, so
SIGTERM reaches its handler) and a helper thread plays the devices, then sends the process SIGTERM. Each test has a
topic prefix and a client id (so a broker session) of its own.
"""

import logging
import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime
from io import StringIO

import paho.mqtt.client as paho
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sensors.models import Reading, RejectedMessage, Sensor
from sensors.tests.transports.consuming import run_consumer_until, wait_until
from sensors.transports.mqtt import Broker, broker_client, broker_parse

pytestmark = pytest.mark.django_db(transaction=True)

SESSION_EXPIRY = 120


@pytest.fixture(autouse=True)
def _short_sessions(settings):
    settings.SENSORS_MQTT_SESSION_EXPIRY = SESSION_EXPIRY  # the broker forgets the tests' sessions soon after


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger="sensors.ingest")
    return caplog


@pytest.fixture
def device(mqtt_url):
    """`device(topic, *payloads)` publishes at QoS 1 and returns once the broker has every message."""
    client = broker_client(mqtt_url)

    def publish(topic: str, *payloads: bytes) -> None:
        infos = [client.publish(topic, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(timeout=10)
            assert info.is_published()

    yield publish
    client.disconnect()
    client.loop_stop()


def subscriptions(logs) -> int:
    return sum(record.getMessage() == "mqtt subscribed" for record in logs.records)


def run_consumer(mqtt_url, prefix, logs, devices, *, batch_ms: int = 50) -> str:
    """Run the command until `devices()` returns (called once the consumer has subscribed), then SIGTERM; the
    command's stdout."""
    before = subscriptions(logs)
    return run_consumer_until(
        "--source", "mqtt", "--mqtt-url", mqtt_url, "--topic-prefix", prefix, "--client-id", f"{prefix}-consumer",
        "--batch-ms", str(batch_ms),
        ready=lambda: subscriptions(logs) > before,
        devices=devices,
    )  # fmt: skip


def take_over_session(mqtt_url: str, client_id: str, *, expect: int, wait: float = 5) -> list[bytes]:
    """Connect with the consumer's client id (the broker then drops the consumer's connection), collect what the
    broker sends from the session without acknowledging any of it, and leave the session to the consumer."""
    broker = broker_parse(mqtt_url)
    received: list[bytes] = []
    connected = threading.Event()
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=True,
        reconnect_on_failure=False,
    )
    client.on_connect = lambda *args: connected.set()
    client.on_message = lambda client, userdata, message: received.append(message.payload)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY
    client.connect(broker.host, broker.port, clean_start=False, properties=properties)
    client.loop_start()
    try:
        assert connected.wait(5), "the broker did not accept the second connection"
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and (len(received) < expect or not expect):
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    return received


def test_bare_numbers_and_json_readings_are_stored(mqtt_url, prefix, logs, device):
    moments = []

    def devices():
        moments.append(timezone.now())
        device(f"{prefix}/temperature", b"14.5", b'{"value": 14, "timestamp": "2024-12-01 12:00:00"}')
        device(f"{prefix}/gas", b'{"sensor": "gas", "value": -3.25, "timestamp": "2024-12-01T13:00:00+01:00"}')
        device(f"{prefix}/flow", b" 7 \n")
        wait_until(lambda: Reading.objects.count() == 4)
        moments.append(timezone.now())

    out = run_consumer(mqtt_url, prefix, logs, devices)

    stored = {(r.sensor.key, r.value): r.timestamp for r in Reading.objects.select_related("sensor")}
    assert set(stored) == {("temperature", 14.5), ("temperature", 14.0), ("gas", -3.25), ("flow", 7.0)}
    assert stored["temperature", 14.0] == datetime(2024, 12, 1, 12, tzinfo=UTC)
    assert stored["gas", -3.25] == datetime(2024, 12, 1, 12, tzinfo=UTC)
    # Bare numbers are stamped when the consumer receives them.
    assert moments[0] <= stored["temperature", 14.5] <= moments[1]
    assert moments[0] <= stored["flow", 7.0] <= moments[1]
    assert "4 received, 4 stored, 0 duplicates, 0 rejected" in out
    assert not RejectedMessage.objects.exists()


BAD = [
    (b"{not json", "payload: Not valid JSON: Expecting property name"),
    (b"[]", "payload: Expected a JSON object, got a JSON list."),
    (b'"14.5"', "payload: Expected a JSON object, got a JSON str."),
    (b"14,5", "payload: Not valid JSON: Extra data"),
    (b"", "payload: Not valid JSON: Expecting value"),
    (b"NaN", "value: NaN is not a finite number."),
    (b"1e999", "value: Must be a finite number (not NaN or infinity)."),
    (b"\xff\xfe\x00binary", "payload: The message is not UTF-8 text."),
    (b"x" * 70_000, "payload: The message is 70000 bytes; the limit is 65536."),
    (b'{"value": "14", "timestamp": "2024-12-01 12:00:00"}', "value: Must be a number, not a string."),
    (b'{"value": 1}', "timestamp: This field is required."),
    (b'{"value": 1, "timestamp": "2999-01-01 00:00:00"}', "timestamp: 2999-01-01T00:00:00+00:00 is more than 300 s"),
]


def test_bad_payloads_are_rejected_with_their_reasons_while_the_consumer_goes_on(mqtt_url, prefix, logs, device):
    def devices():
        for i in range(2 * len(BAD)):
            device(f"{prefix}/gas", b'{"value": %d, "timestamp": "2024-12-01T10:00:%02d"}' % (i, i))
            device(f"{prefix}/gas", BAD[i % len(BAD)][0])
        device(f"{prefix}/no such sensor!", b"1.0")
        wait_until(lambda: Reading.objects.count() + RejectedMessage.objects.count() == 4 * len(BAD) + 1)
        # Still alive after the burst: one more valid reading is stored.
        device(f"{prefix}/gas", b"-1")
        wait_until(lambda: Reading.objects.count() == 2 * len(BAD) + 1)

    out = run_consumer(mqtt_url, prefix, logs, devices)

    assert Reading.objects.filter(sensor__key="gas").count() == 2 * len(BAD) + 1
    rejected = list(RejectedMessage.objects.order_by("id"))
    assert len(rejected) == 2 * len(BAD) + 1
    assert {r.transport for r in rejected} == {"mqtt"}
    reasons = [r.reason for r in rejected]
    for _, reason in BAD:
        assert sum(text.startswith(reason) for text in reasons) == 2, reason
    assert sum(text.startswith("sensor: A sensor key is 1-100 letters") for text in reasons) == 1
    assert f"{4 * len(BAD) + 2} received, {2 * len(BAD) + 1} stored, 0 duplicates, {2 * len(BAD) + 1} rejected" in out


def test_a_message_naming_another_sensor_than_its_topic_is_rejected(mqtt_url, prefix, logs, device):
    def devices():
        device(
            f"{prefix}/temperature",
            b'{"sensor": "gas", "value": 1, "timestamp": "2024-12-01 12:00:00"}',
            b'{"sensor": 5, "value": 2, "timestamp": "2024-12-01 12:00:00"}',
            b'{"sensor": "temperature", "value": 3, "timestamp": "2024-12-01 12:00:00"}',
        )
        wait_until(lambda: RejectedMessage.objects.count() == 2 and Reading.objects.count() == 1)

    out = run_consumer(mqtt_url, prefix, logs, devices)

    assert sorted(RejectedMessage.objects.values_list("reason", flat=True)) == [
        "sensor: Must be a string, not a number.",
        "sensor: The message names sensor 'gas' but was sent for 'temperature'.",
    ]
    assert list(Reading.objects.values_list("sensor__key", "value")) == [("temperature", 3.0)]
    assert not Sensor.objects.filter(key="gas").exists()
    assert "3 received, 1 stored, 0 duplicates, 2 rejected" in out


def test_what_is_published_while_the_consumer_is_stopped_is_stored_after_restart(mqtt_url, prefix, logs, device):
    run_consumer(mqtt_url, prefix, logs, lambda: None)  # creates the session and its subscription
    device(f"{prefix}/flow", b'{"value": 1, "timestamp": "2024-12-01 12:00:00"}', b"2.5")
    published = timezone.now()

    out = run_consumer(mqtt_url, prefix, logs, lambda: wait_until(lambda: Reading.objects.count() == 2))

    stored = dict(Reading.objects.values_list("value", "timestamp"))
    assert stored[1.0] == datetime(2024, 12, 1, 12, tzinfo=UTC)
    assert stored[2.5] > published  # a bare number is stamped when the consumer receives it
    assert "2 received, 2 stored" in out


def test_after_a_lost_connection_the_session_resumes_and_nothing_is_stored_twice(mqtt_url, prefix, logs, device):
    resent = []

    def devices():
        device(f"{prefix}/flow", b"1.5", b"2.5", b"3.5")
        time.sleep(0.5)  # received and held: the batch is not due for 60 s, so nothing is acknowledged yet
        before = subscriptions(logs)
        # Another connection with the consumer's client id: the broker drops the consumer's connection and sends
        # the session's unacknowledged messages to the newcomer, which leaves without acknowledging them.
        resent.extend(take_over_session(mqtt_url, f"{prefix}-consumer", expect=3))
        wait_until(lambda: subscriptions(logs) > before)  # the consumer reconnected
        time.sleep(0.5)  # and got them once more

    out = run_consumer(mqtt_url, prefix, logs, devices, batch_ms=60_000)

    assert sorted(resent) == [b"1.5", b"2.5", b"3.5"]
    # Bare numbers are stamped on receipt: keeping the copies from the lost connection too would store six.
    assert sorted(Reading.objects.values_list("value", flat=True)) == [1.5, 2.5, 3.5]
    assert "3 received, 3 stored" in out
    assert any(record.getMessage() == "mqtt connection lost, reconnecting" for record in logs.records)


def test_sigterm_writes_what_is_held_and_acknowledges_it_before_leaving(mqtt_url, prefix, logs, device):
    def devices():
        for i in range(5):
            device(f"{prefix}/flow", b'{"value": %d, "timestamp": "2024-12-01T12:00:0%d"}' % (i, i))
        time.sleep(0.3)  # received, but the batch is not due for 60 s

    out = run_consumer(mqtt_url, prefix, logs, devices, batch_ms=60_000)

    assert Reading.objects.filter(sensor__key="flow").count() == 5
    assert Sensor.objects.get(key="flow").latest_value == 4.0
    assert "5 received, 5 stored" in out
    # Acknowledged before the disconnect: the session holds nothing to send again.
    assert take_over_session(mqtt_url, f"{prefix}-consumer", expect=0, wait=1) == []


def test_an_unreachable_broker_is_waited_for_and_sigterm_still_stops_cleanly(logs, prefix):
    def stop_later():
        time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=stop_later, daemon=True).start()
    out = StringIO()
    try:
        call_command(
            "consume_readings", "--source", "mqtt", "--mqtt-url", "mqtt://127.0.0.1:1", "--topic-prefix", prefix,
            "--client-id", f"{prefix}-consumer", stdout=out, stderr=StringIO(),
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "Stopped: 0 received, 0 stored, 0 duplicates, 0 rejected." in out.getvalue()
    assert any(record.getMessage() == "mqtt broker unreachable, retrying" for record in logs.records)


def test_without_a_broker_the_command_fails_with_one_line(settings):
    settings.MQTT_URL = ""
    with pytest.raises(CommandError, match=r"^No MQTT broker configured: set MQTT_URL or pass --mqtt-url\.$"):
        call_command("consume_readings", "--source", "mqtt")
    with pytest.raises(CommandError, match=r"^An MQTT URL looks like mqtt://"):
        call_command("consume_readings", "--source", "mqtt", "--mqtt-url", "redis://127.0.0.1:6379/0")
    with pytest.raises(CommandError, match=r"^The topic prefix must be a topic without wildcards"):
        call_command("consume_readings", "--source", "mqtt", "--mqtt-url", "mqtt://h", "--topic-prefix", "a/#")


@pytest.mark.parametrize(
    ("url", "broker"),
    [
        ("mqtt://127.0.0.1", Broker("127.0.0.1", 1883)),
        ("mqtt://broker.example:11883", Broker("broker.example", 11883)),
        ("mqtts://u%40x:p%3Aw@broker.example", Broker("broker.example", 8883, "u@x", "p:w", tls=True)),
        ("mqtt://device@[::1]:1884", Broker("::1", 1884, "device", None)),
    ],
)
def test_broker_urls(url, broker):
    assert broker_parse(url) == broker


@pytest.mark.parametrize("url", ["", "127.0.0.1:1883", "tcp://h:1883", "mqtt://", "mqtt://h:99999"])
def test_bad_broker_urls_say_what_is_wrong(url):
    with pytest.raises(ValueError, match="MQTT URL"):
        broker_parse(url)


HOSTILE = [
    b'{"sensor": "\\ud800", "value": 1, "timestamp": "2024-12-01 12:00:00"}',  # the crash loop of issue 14
    b'{"sensor": "gas\\u0000", "value": 1, "timestamp": "2024-12-01 12:00:00"}',
    b'{"value": "\\ud800", "timestamp": "2024-12-01 12:00:00"}',
    b'{"value": 1, "timestamp": "2024-12-01 12:00:00\\u0000+05:00"}',
    b'{"value": 1, "timestamp": "\\udfff"}',
    b'["\\ud800", "\\u0000"]',
    b"\xed\xa0\x80 \x00 not JSON",  # a surrogate as UTF-8 bytes would write it, and a NUL
    b"[" * 30_000 + b"]" * 30_000,  # under the size limit: the parser's depth refuses it
]


def test_nul_surrogates_and_deep_nesting_are_rejected_and_the_consumer_stays_alive(mqtt_url, prefix, logs, device):
    def devices():
        for i, payload in enumerate(HOSTILE):
            device(f"{prefix}/gas", payload, b'{"value": %d, "timestamp": "2024-12-01T10:00:%02d"}' % (i, i))
        wait_until(lambda: RejectedMessage.objects.count() == len(HOSTILE) and Reading.objects.count() == len(HOSTILE))
        device(f"{prefix}/gas", b"-1")  # still alive
        wait_until(lambda: Reading.objects.count() == len(HOSTILE) + 1)

    out = run_consumer(mqtt_url, prefix, logs, devices)

    rejected = RejectedMessage.objects.all()
    assert all(r.reason and r.transport == "mqtt" for r in rejected)
    surrogate = rejected.get(sensor_key="\\ud800")  # escaped as JSON writes it
    assert surrogate.reason.startswith("sensor: The sensor key holds a NUL character or a lone surrogate")
    # Raw bytes are kept as text (invalid UTF-8 as U+FFFD, NUL escaped), never as a Python repr of a bytearray.
    assert rejected.filter(payload="\ufffd\ufffd\ufffd \\u0000 not JSON").exists()
    assert f"{2 * len(HOSTILE) + 1} received, {len(HOSTILE) + 1} stored, 0 duplicates, {len(HOSTILE)} rejected" in out
