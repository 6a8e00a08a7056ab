"""The ingest scenarios of the fault suite (a-d): readings sent through the Redis stream or MQTT while the stream
consumer, PostgreSQL, Redis or the broker is killed or restarted; each ends with exact counts.

Reading i (0 <= i < N) is `{"sensor": "<prefix>-<i mod 10>", "value": i, "timestamp": BASE + i ms}`: its value names
it, so the stored rows say exactly which readings are missing (lost) and which are there twice (duplicated; the
unique (sensor, timestamp) constraint should make that impossible, and the suite checks it rather than assume it).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from bench.faults.servers import Process, wait_for

SENSORS = 10
CHUNK = 500  # readings per XADD pipeline / per publishing step


@dataclass
class Outcome:
    """One scenario's exact counts. `expected`: readings the senders had acknowledged (XADD reply, MQTT PUBACK);
    `stored`: distinct ones in the database; `lost` = expected - stored; `duplicated`: rows beyond one per reading;
    `redelivered`: entries read again after a kill (stored once: evidence that the kills hit unacknowledged work)."""

    scenario: str
    faults: str
    expected: int
    stored: int
    lost: int
    duplicated: int
    redelivered: int | None = None
    seconds: float = 0.0
    note: str = ""
    held: bool = True  # a scenario's own further condition (e.g. the interrupted job marked failed)
    loss_allowed: bool = False  # a fault outside the guarantee (a crash of the broker): losses reported, not failed

    @property
    def ok(self) -> bool:
        return (self.lost == 0 or self.loss_allowed) and self.duplicated == 0 and self.held


def base_time() -> datetime:
    return (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)


def reading(prefix: str, i: int, base: datetime) -> str:
    stamp = base + timedelta(milliseconds=i)
    return json.dumps({"sensor": f"{prefix}-{i % SENSORS}", "value": i, "timestamp": stamp.isoformat()})


def readings_count(prefix: str, expected: int) -> tuple[int, int, int]:
    """(distinct readings stored, lost, duplicated) for the readings 0..expected-1 of sensors `<prefix>-*`."""
    from django.db import connection

    from sensors.models import Reading

    connection.close()  # the server may have restarted since the last query
    values = list(Reading.objects.filter(sensor__key__startswith=f"{prefix}-").values_list("value", flat=True))
    distinct = {int(v) for v in values}
    wanted = set(range(expected))
    return len(distinct & wanted), len(wanted - distinct), len(values) - len(distinct)


def stored_rows(prefix: str) -> int:
    from django.db import connection

    from sensors.models import Reading

    try:
        return Reading.objects.filter(sensor__key__startswith=f"{prefix}-").count()
    except Exception:  # noqa: BLE001 (PostgreSQL restarting: ask again later)
        connection.close()
        return -1


# --- the Redis stream -------------------------------------------------------------------------------------------


class StreamProducer(threading.Thread):
    """XADDs readings 0..n-1 to `stream` at `rate` per second in pipelines of CHUNK, as a device that retries
    what Redis did not acknowledge would (a chunk is sent again whole: an entry Redis took before a failure is then
    in the stream twice, and stored once). `acknowledged` counts readings whose XADD Redis answered."""

    def __init__(self, *, redis_url: str, stream: str, prefix: str, n: int, rate: float, base: datetime) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=5)
        self.stream, self.prefix, self.n, self.rate, self.base = stream, prefix, n, rate, base
        self.acknowledged = 0
        self.failures = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            for first in range(0, self.n, CHUNK):
                last = min(first + CHUNK, self.n)
                while True:
                    try:
                        pipe = self.client.pipeline(transaction=False)
                        for i in range(first, last):
                            pipe.xadd(self.stream, {"data": reading(self.prefix, i, self.base)})
                        pipe.execute()
                        break
                    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                        self.failures += 1
                        time.sleep(0.2)
                self.acknowledged = last
                ahead = started + last / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        except BaseException as exc:  # noqa: BLE001 (raised by the scenario)
            self.error = exc


def consumer_process(*, env: dict[str, str], stream: str, log: Path) -> Process:
    return Process(
        [
            "manage.py",
            "consume_readings",
            "--source",
            "stream",
            "--stream",
            stream,
            "--group",
            "faults",
            "--consumer",
            "faults-consumer",
        ],  # fmt: skip
        env=env,
        log=log,
    )


def stream_drained(redis_url: str, stream: str) -> bool:
    """Every entry of `stream` read by the group and acknowledged."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, decode_responses=True)
    try:
        last = client.xinfo_stream(stream)["last-generated-id"]
        group = next(g for g in client.xinfo_groups(stream) if g["name"] == "faults")
        return group["last-delivered-id"] == last and group["pending"] == 0
    finally:
        client.close()


def redelivered(log: Path) -> int:
    """Entries the consumers read again from their own pending list (JSON log lines)."""
    total = 0
    for line in log.read_text(errors="replace").splitlines():
        if "re-reading own pending entries" in line:
            try:
                total += int(json.loads(line)["entries"])
            except (ValueError, KeyError):
                continue
    return total


def _stream_run(
    *,
    name: str,
    redis_url: str,
    env: dict[str, str],
    workdir: Path,
    prefix: str,
    n: int,
    duration: float,
    faults: Callable[[Process, StreamProducer], str],
    timeout: float,
) -> Outcome:
    """Produce n readings over `duration` seconds to a fresh stream with one consumer running, apply `faults`
    (which returns their description), wait until the group has read and acknowledged everything, count."""
    stream = f"{prefix}-stream"
    log = workdir / f"{prefix}-consumer.log"
    started = time.monotonic()
    consumer = consumer_process(env=env, stream=stream, log=log)
    consumer.start()
    producer = StreamProducer(redis_url=redis_url, stream=stream, prefix=prefix, n=n, rate=n / duration,
                              base=base_time())  # fmt: skip
    try:
        producer.start()
        described = faults(consumer, producer)
        producer.join()
        if producer.error:
            raise producer.error
        if not consumer.alive():
            consumer.start()
        wait_for(lambda: stream_drained(redis_url, stream), timeout=timeout, what=f"{name}: stream drained",
                 interval=0.5)  # fmt: skip
        consumer.stop()
    finally:
        consumer.close()
    stored, lost, duplicated = readings_count(prefix, producer.acknowledged)
    return Outcome(name, described, producer.acknowledged, stored, lost, duplicated, redelivered(log),
                   time.monotonic() - started)  # fmt: skip


def consumer_kills(
    *, redis_url: str, env: dict[str, str], workdir: Path, prefix: str, n: int, kills: int, duration: float,
    seed: int, timeout: float = 300,
) -> Outcome:  # fmt: skip
    """(a) kill -9 of the stream consumer `kills` times while n readings arrive over `duration` seconds, each at a
    random moment 0.05-1.5 s after it started reading (the readings that came while it was down make a backlog,
    so it is then in the middle of batches); restarted at once each time."""
    rng = random.Random(seed)

    def faults(consumer: Process, producer: StreamProducer) -> str:
        log = consumer.log
        for started in range(1, kills + 1):
            # The line the command writes once Django is set up, just before it reads (whatever the log level).
            wait_for(lambda n=started: log.read_text(errors="replace").count("Consuming Redis stream") >= n,
                     timeout=60, what="consumer reading")  # fmt: skip
            time.sleep(rng.uniform(0.05, 1.5))
            consumer.kill()
            consumer.start()
        return f"{kills} × kill -9 of the consumer (seed {seed})"

    return _stream_run(name="a. consumer kill -9", redis_url=redis_url, env=env, workdir=workdir, prefix=prefix,
                       n=n, duration=duration, faults=faults, timeout=timeout)  # fmt: skip


def postgres_restarts(
    *, redis_url: str, env: dict[str, str], workdir: Path, prefix: str, n: int, duration: float, postgres
) -> Outcome:
    """(b) PostgreSQL stopped `fast` (a clean restart) and then `immediate` (as a crash: recovery at start), each
    down 3 s, while n readings arrive."""

    def faults(consumer: Process, producer: StreamProducer) -> str:
        time.sleep(duration / 3)
        postgres.restart(mode="fast", down_for=3)
        time.sleep(duration / 3)
        postgres.restart(mode="immediate", down_for=3)
        return "PostgreSQL restart (fast) + crash restart (immediate), 3 s down each"

    return _stream_run(name="b. PostgreSQL restart", redis_url=redis_url, env=env, workdir=workdir, prefix=prefix,
                       n=n, duration=duration, faults=faults, timeout=300)  # fmt: skip


def redis_restart(
    *, redis_server, env: dict[str, str], workdir: Path, prefix: str, n: int, duration: float, kill: bool
) -> Outcome:
    """(c) Redis (append-only file, appendfsync everysec) restarted mid-ingest: SIGTERM or kill -9, 2 s down."""

    def faults(consumer: Process, producer: StreamProducer) -> str:
        time.sleep(duration / 2)
        before = producer.acknowledged
        redis_server.restart(kill=kill, down_for=2)
        how = "kill -9" if kill else "SIGTERM"
        return (
            f"redis-server {how} + restart, 2 s down, after {before} XADDs acknowledged; {producer.failures} failed "
            "sends retried"
        )

    name = f"c. Redis {'kill -9' if kill else 'restart'}"
    return _stream_run(name=name, redis_url=redis_server.url, env=env, workdir=workdir, prefix=prefix, n=n,
                       duration=duration, faults=faults, timeout=300)  # fmt: skip


# --- MQTT -------------------------------------------------------------------------------------------------------


def mqtt_restart(
    *, mosquitto, env: dict[str, str], workdir: Path, prefix: str, n: int, duration: float, kill: bool
) -> Outcome:
    """(d) The broker restarted (SIGTERM, or kill -9) mid-ingest. The consumer is `consume_readings --source mqtt`
    (QoS 1 subscription in a persistent session, PUBACK after commit); the publisher is a paho client publishing
    QoS 1 that keeps what the broker has not acknowledged and sends it again after reconnecting (paho's own queue,
    in memory)."""
    from sensors.transports.mqtt import broker_client

    log = workdir / f"{prefix}-consumer.log"
    started = time.monotonic()
    consumer = Process(
        [
            "manage.py",
            "consume_readings",
            "--source",
            "mqtt",
            "--mqtt-url",
            mosquitto.url,
            "--topic-prefix",
            prefix,
            "--client-id",
            f"{prefix}-consumer",
        ],  # fmt: skip
        env=env,
        log=log,
    )
    consumer.start()
    # The consumer's session must exist before the first publish, or the broker keeps nothing for it.
    wait_for(lambda: "mqtt subscribed" in log.read_text(errors="replace"), timeout=60, what="consumer subscribed")
    publisher = broker_client(mosquitto.url)
    acknowledged: set[int] = set()  # message ids the broker acknowledged (PUBACK)
    publisher.on_publish = lambda client, userdata, mid, reason_code, properties: acknowledged.add(mid)
    base = base_time()
    mids = []
    try:
        rate = n / duration
        restart_at = n // 2
        for i in range(n):
            if i == restart_at:
                threading.Thread(target=mosquitto.restart, kwargs={"kill": kill, "down_for": 2}, daemon=True).start()
            # A publish while the broker is down answers "not connected" but stays in paho's queue, sent at the
            # reconnect (its message id then acknowledged like the others).
            mids.append(publisher.publish(f"{prefix}/{prefix}-{i % SENSORS}", reading(prefix, i, base), qos=1).mid)
            if i % CHUNK == CHUNK - 1:
                ahead = started + i / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        wait_for(lambda: acknowledged.issuperset(mids), timeout=120, what="every publish acknowledged",
                 interval=0.5)  # fmt: skip
        # Then until nothing more arrives: all stored, or the count has not moved for 10 s.
        last, since = -2, time.monotonic()
        while time.monotonic() - since < 10:
            rows = stored_rows(prefix)
            if rows >= n:
                break
            if rows != last:
                last, since = rows, time.monotonic()
            time.sleep(0.5)
        consumer.stop()
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        consumer.close()
    stored, lost, duplicated = readings_count(prefix, n)
    faults = f"mosquitto {'kill -9' if kill else 'SIGTERM'} + restart, 2 s down"
    connects = log.read_text(errors="replace").count('"mqtt connected"')
    note = f"the consumer connected {connects} times by itself"
    if kill:
        note += (
            "; outside the guarantee: mosquitto keeps queued messages in memory and saves them every "
            "autosave_interval (60 s), so a crash loses what it had acknowledged since"
        )
    return Outcome(f"d. MQTT broker {'kill -9' if kill else 'restart'}", faults, n, stored, lost, duplicated, None,
                   time.monotonic() - started, note, held=connects >= 2, loss_allowed=kill)  # fmt: skip
