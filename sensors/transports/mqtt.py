"""MQTT: readings that devices publish on `<prefix>/<sensor key>` (Mosquitto here), as JSON or as a bare number.

What `consume_readings --source mqtt` promises (docs/ingestion.md, "MQTT"):

- a QoS 1 subscription in a persistent session (MQTT 5, a fixed client id, clean start off, a session expiry), so
  the broker queues what is published while the consumer is away and sends again whatever it delivered but never
  saw acknowledged;
- a message is acknowledged (PUBACK) only after the batch holding it is committed, as a reading or as a rejected
  message: at-least-once from the broker to the database. A timestamped reading sent twice is a duplicate and is
  stored once; a bare number has no timestamp of its own, so one delivered again is stored again, at its new
  receive time;
- the broker may send up to twice the batch size of unacknowledged messages (MQTT 5 Receive Maximum) instead of
  Mosquitto's default 20, so waiting for the commit does not throttle the flow.

paho calls back on its own network thread. The callbacks only put deliveries on a queue; pre-processing, the
batchers and the acknowledgements all run in the caller's thread.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from sensors.ingest import ReadingInvalid, message_decode
from sensors.transports.runner import Batcher, Stopper

logger = logging.getLogger("sensors.ingest")

RECEIVE_MAXIMUM_LIMIT = 65_535  # the largest Receive Maximum MQTT 5 can express
_BARE_NUMBER = re.compile(rb"\s*-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\s*")


# --- the broker's address ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False


def broker_parse(url: str) -> Broker:
    """`mqtt://[user[:password]@]host[:port]` (1883 by default) or `mqtts://...` (TLS, 8883); `ValueError` with a
    readable message otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError("An MQTT URL looks like mqtt://[user:password@]host[:port], or mqtts://... for TLS.")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("The MQTT URL's port is not a number from 1 to 65535.") from None
    if not parts.hostname:
        raise ValueError("The MQTT URL names no host.")
    tls = parts.scheme == "mqtts"
    return Broker(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=tls,
    )


def broker_client(url: str) -> paho.Client:
    """A connected publishing client (clean session, its network thread running); `OSError` when the broker
    cannot be reached, `ValueError` for a bad URL. Devices' side: the simulator and tests."""
    broker = broker_parse(url)
    client = paho.Client(CallbackAPIVersion.VERSION2)
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set()
    client.max_inflight_messages_set(1000)  # paho's default of 20 unacknowledged publishes slows a backfill
    answered, refused = threading.Event(), []

    def on_connect(
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        answered.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    if not answered.wait(10) or refused:
        client.loop_stop()
        raise ConnectionRefusedError(f"the broker refused the connection: {refused[0]}" if refused else "no CONNACK")
    return client


# --- one message ------------------------------------------------------------------------------------------------


def message_prepare(*, payload: bytes | bytearray, sensor_key: str, received_at: datetime) -> tuple[Any, bool]:
    """What to hand the ingestion service for one MQTT message, and whether the service must check it against
    the topic's sensor (`readings_ingest(sensor_key=...)`), because the message names a sensor of its own.

    A bare number becomes a reading of the topic's sensor stamped `received_at`; a JSON object without `sensor`
    (or naming the topic's sensor) gets the topic's sensor, so that a rejected one can be re-processed from the
    admin as it is kept. Anything else goes to the service unchanged, which rejects it with its reason.
    """
    payload = bytes(payload)  # paho hands over a bytearray: kept as bytes, a rejection stores its text
    if len(payload) <= 100 and _BARE_NUMBER.fullmatch(payload):
        return {"sensor": sensor_key, "value": float(payload), "timestamp": received_at}, False
    try:
        data = message_decode(payload)
    except ReadingInvalid:
        return payload, False
    if "sensor" in data and data["sensor"] != sensor_key:
        return data, True
    return {**data, "sensor": sensor_key}, False


class Delivery(NamedTuple):
    """A message as paho's network thread hands it over. `epoch` counts the connections lost before it came."""

    epoch: int
    mid: int
    qos: int
    topic: str
    payload: bytes | bytearray  # paho hands over a bytearray
    received_at: datetime


# --- the connection (paho's network thread) ---------------------------------------------------------------------


class _Link:
    """The paho client: connects (and reconnects, 1 s doubling to 30 s) in its own thread, subscribes on every
    connect, puts deliveries on `inbox`, and acknowledges only what arrived on the connection still open."""

    def __init__(
        self,
        *,
        broker: Broker,
        client_id: str,
        topic: str,
        session_expiry: int,
        receive_maximum: int,
        inbox: queue.SimpleQueue[Delivery],
    ) -> None:
        self.broker, self.topic, self.inbox = broker, topic, inbox
        self.epoch = 0  # bumped by each lost connection; only paho's thread writes it, under `_lock`
        self.accepting = True
        self.closing = False
        self._lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, manual_ack=True
        )
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves Properties() unannotated
        self.properties.SessionExpiryInterval = session_expiry
        self.properties.ReceiveMaximum = receive_maximum

    def start(self) -> None:
        # clean_start=False on every connect, the first included: the session outlives this process.
        self.client.connect_async(
            self.broker.host, self.broker.port, keepalive=30, clean_start=False, properties=self.properties
        )
        self.client.loop_start()

    def acknowledge(self, tags: list[tuple[int, int, int, int]]) -> None:
        """PUBACK each (sequence, epoch, mid, qos) in order. Those of a lost connection are skipped: the broker
        sends them again, and their packet ids may already name other messages on the new connection."""
        with self._lock:
            for _, epoch, mid, qos in tags:
                if epoch == self.epoch and qos > 0:
                    self.client.ack(mid, qos)

    def stop_accepting(self) -> None:
        """From now on deliveries are left unacknowledged; the broker keeps them for the next start."""
        self.accepting = False

    def close(self) -> None:
        """DISCONNECT after the acknowledgements already queued; the session stays on the broker."""
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()

    # paho's network thread from here on: no exceptions, nothing slow.

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            logger.error("mqtt connection refused", extra={"reason": str(reason_code)})
            return
        logger.info("mqtt connected", extra={"session_present": flags.session_present})
        # Retained messages are replays of old readings (a bare number would get a wrong time): never sent here.
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        client.subscribe(self.topic, options=options)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        logger.warning("mqtt broker unreachable, retrying", extra={"host": self.broker.host, "port": self.broker.port})

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(code.is_failure for code in reason_codes):
            logger.error("mqtt subscription refused", extra={"topic": self.topic, "reason": str(reason_codes[0])})
        else:
            logger.info("mqtt subscribed", extra={"topic": self.topic})

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self.epoch += 1
        if not self.closing:
            logger.warning("mqtt connection lost, reconnecting", extra={"reason": str(reason_code)})

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if not self.accepting:
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:  # MQTT topics are UTF-8; a broker should never pass on another one
            topic = ""
        self.inbox.put(Delivery(self.epoch, message.mid, message.qos, topic, message.payload, datetime.now(UTC)))


# --- the consumer loop (the caller's thread) --------------------------------------------------------------------


class _Consumer:
    """Pre-processes deliveries into `batcher` and, for messages naming a sensor of their own, into one small
    batcher per topic sensor (whose service call checks them against it); commits them together and then
    acknowledges every message of the round in arrival order."""

    def __init__(self, *, batcher: Batcher, link: _Link, inbox: queue.SimpleQueue[Delivery], topic_prefix: str) -> None:
        self.batcher, self.link, self.inbox = batcher, link, inbox
        self.prefix_length = len(topic_prefix) + 1
        self.checked: dict[str, Batcher] = {}
        self.acks: list[tuple[int, int, int, int]] = []
        self.sequence = 0
        batcher.on_flushed = self.acks.extend

    def run(self, stopper: Stopper) -> None:
        while not stopper.stopped:
            try:
                self.take(self.inbox.get(timeout=min(self.time_left(), 0.5) if self.held() else 0.5))
                while not self.due():
                    self.take(self.inbox.get_nowait())
            except queue.Empty:
                pass
            if self.due():
                self.flush()

    def drain(self) -> None:
        while True:
            try:
                self.take(self.inbox.get_nowait())
            except queue.Empty:
                return

    def take(self, delivery: Delivery) -> None:
        self.forget_if_stale()
        if delivery.epoch != self.link.epoch:
            return  # its connection is gone, unacknowledged: the broker sends it again
        key = delivery.topic[self.prefix_length :]
        message, check = message_prepare(payload=delivery.payload, sensor_key=key, received_at=delivery.received_at)
        self.sequence += 1
        tag = (self.sequence, delivery.epoch, delivery.mid, delivery.qos)
        if check:
            if key not in self.checked:
                self.checked[key] = Batcher(
                    transport=self.batcher.transport,
                    batch_size=self.batcher.batch_size,
                    max_wait=self.batcher.max_wait,
                    stopper=self.batcher.stopper,
                    on_flushed=self.acks.extend,
                    sensor_key=key,
                )
            self.checked[key].add(message, tag)
        else:
            self.batcher.add(message, tag)

    def held(self) -> int:
        return len(self.batcher.messages) + sum(len(b.messages) for b in self.checked.values())

    def time_left(self) -> float:
        return min([self.batcher.time_left(), *(b.time_left() for b in self.checked.values())])

    def due(self) -> bool:
        return (
            self.batcher.due() or any(b.due() for b in self.checked.values()) or self.held() >= self.batcher.batch_size
        )

    def forget_if_stale(self) -> None:
        """After a lost connection, drop what is held from it: none of it was acknowledged, so the broker sends it
        all again on the new one (storing both copies would store bare numbers twice)."""
        epoch = self.link.epoch
        stale = [b for b in (self.batcher, *self.checked.values()) if b.tags and b.tags[0][1] != epoch]
        if not stale:
            return
        dropped = sum(b.discard() for b in stale)
        logger.warning(
            "mqtt messages of a lost connection dropped; the broker sends them again", extra={"dropped": dropped}
        )

    def flush(self) -> None:
        self.forget_if_stale()
        self.batcher.flush()
        for checked in self.checked.values():
            result = checked.flush()
            if result is not None:
                self.batcher.total.add(result)
        self.checked.clear()
        self.acks.sort()
        self.link.acknowledge(self.acks)
        self.acks.clear()


def mqtt_consume(
    *,
    url: str,
    topic_prefix: str,
    client_id: str,
    session_expiry: int,
    batcher: Batcher,
    stopper: Stopper,
) -> None:
    """Subscribe to `<topic_prefix>/+` and feed `batcher` until `stopper` is set, then write what is held,
    acknowledge it and disconnect, leaving the session (and what the broker queues in it) for the next start.

    The acknowledgements take `batcher.on_flushed`. `ValueError` for a URL that is not an MQTT URL; an unreachable
    broker is waited for.
    """
    broker = broker_parse(url)
    inbox: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
    link = _Link(
        broker=broker,
        client_id=client_id,
        topic=f"{topic_prefix}/+",
        session_expiry=session_expiry,
        receive_maximum=min(2 * batcher.batch_size, RECEIVE_MAXIMUM_LIMIT),
        inbox=inbox,
    )
    consumer = _Consumer(batcher=batcher, link=link, inbox=inbox, topic_prefix=topic_prefix)
    link.start()
    try:
        try:
            consumer.run(stopper)
        finally:
            link.stop_accepting()
            consumer.drain()
            consumer.flush()
    finally:
        link.close()
