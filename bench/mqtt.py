"""MQTT ingest throughput: local publishers -> Mosquitto -> `consume_readings --source mqtt` -> PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres MQTT_URL=mqtt://127.0.0.1:1883 \
        .venv/bin/python -m bench.mqtt [--messages 100000] [--publishers 2] [--window N] [--bare]

It works in the scratch database `<name>_bench_mqtt` (created and migrated if missing). The consumer runs as its
own process (this script with `--consumer`), with the default batch (SENSORS_CONSUMER_BATCH_SIZE /
SENSORS_CONSUMER_BATCH_MS); once it has subscribed, `--publishers` processes publish `--messages` JSON readings
(or bare numbers with `--bare`) at QoS 1 on `<prefix>/bench-<run>-<n>` (10 sensors) as fast as the broker takes
them. It prints the publishers' rate and the end-to-end rate: first publish to last reading committed.

`--window N` caps the consumer's MQTT 5 Receive Maximum, i.e. how many unacknowledged messages the broker may send
it; `--window 20` is what Mosquitto allows a client that sets none (every MQTT 3.1.1 client), so it measures the
acknowledge-after-commit design without Receive Maximum.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
SENSORS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages in all (default 100,000)")
    parser.add_argument("--publishers", type=int, default=2, help="publishing processes (default 2)")
    parser.add_argument("--window", type=int, help="cap of the consumer's Receive Maximum (default: none)")
    parser.add_argument("--bare", action="store_true", help="publish bare numbers instead of JSON")
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="publish while the consumer is away, then time how fast it drains the queued messages",
    )
    parser.add_argument("--consumer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer:
        consumer(args)
        return
    url = os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883")
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-{run}"
    database_url = os.environ.get("DATABASE_URL", "")  # the consumers find the scratch database from it, as we do
    from bench.setup import django_on_scratch_database

    django_on_scratch_database(script="bench/mqtt.py", suffix="_bench_mqtt")
    from sensors.models import Reading

    share = args.messages // args.publishers
    total = share * args.publishers
    if args.backlog:  # a first start creates the session; the messages wait in it while the consumer is away
        stop_consumer(start_consumer(url, database_url, prefix, args.window))
        publish_all(url, prefix, run, args, share)
    process = start_consumer(url, database_url, prefix, args.window)
    started = time.perf_counter()
    published = publish_all(url, prefix, run, args, share) if not args.backlog else None
    stored, last, progressed = 0, -1, time.perf_counter()
    while stored < total and time.perf_counter() - progressed < 10:  # 10 s without progress: the rest is lost
        time.sleep(0.05)
        stored = Reading.objects.filter(sensor__key__startswith=f"bench-{run}-").count()
        if stored != last:
            last, progressed = stored, time.perf_counter()
    elapsed = progressed - started
    summary = stop_consumer(process)
    window = args.window or "2 x batch"
    kind = "bare numbers" if args.bare else "JSON"
    print(f"{total:,} {kind} messages, {args.publishers} publishers, window {window}")
    if published:
        print(f"published in {published:.2f} s: {total / published:,.0f} messages/s")
        print(f"stored {stored:,} in {elapsed:.2f} s: {stored / elapsed:,.0f} messages/s end to end")
    else:
        print(f"backlog of {total:,} stored ({stored:,}) in {elapsed:.2f} s: {stored / elapsed:,.0f} messages/s")
    print(f"consumer: {summary}")
    if stored < total:
        print(f"LOST: {total - stored:,} messages never arrived (the broker's queue limit, see docs/ingestion.md)")


def start_consumer(url: str, database_url: str, prefix: str, window: int | None) -> subprocess.Popen:
    """The consumer in its own process, once it has subscribed; its log is read (and dropped) by a thread."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.mqtt", "--consumer", "--prefix", prefix]
        + (["--window", str(window)] if window else []),
        cwd=ROOT,
        # A short session expiry: the bench's sessions should not stay on the broker for a week.
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "MQTT_URL": url,
            "LOG_LEVEL": "INFO",
            "SENSORS_MQTT_SESSION_EXPIRY": "600",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:
        if "mqtt subscribed" in line:
            break
    else:
        sys.exit(f"the consumer stopped before subscribing: {process.stdout.read()}")
    threading.Thread(target=process.stderr.read, daemon=True).start()
    return process


def stop_consumer(process: subprocess.Popen) -> str:
    process.terminate()
    summary = process.stdout.read().strip()
    process.wait(60)
    return summary


def publish_all(url: str, prefix: str, run: str, args, share: int) -> float:
    """Seconds the publisher processes took to hand every message to the broker."""
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    publishers = [
        context.Process(target=publish, args=(url, prefix, run, n, share, args.bare)) for n in range(args.publishers)
    ]
    for publisher in publishers:
        publisher.start()
    for publisher in publishers:
        publisher.join()
    return time.perf_counter() - started


def publish(url: str, prefix: str, run: str, n: int, count: int, bare: bool) -> None:
    import json

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    broker = urlsplit(url)  # no Django in this process: sensors.transports.mqtt imports models
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-publisher-{n}")
    if broker.username is not None:
        client.username_pw_set(unquote(broker.username), unquote(broker.password or ""))
    client.max_inflight_messages_set(1000)
    client.connect(broker.hostname, broker.port or 1883)
    client.loop_start()
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)
    info = None
    for i in range(count):
        sensor = f"bench-{run}-{i % SENSORS}"
        if bare:
            payload = f"{i * 0.5}"
        else:
            stamp = (start + timedelta(seconds=i // SENSORS)).isoformat()
            payload = json.dumps({"value": i * 0.5, "timestamp": stamp})
        info = client.publish(f"{prefix}/{sensor}", payload, qos=1)
        if i % 10_000 == 9_999:  # packet ids are 16-bit: never more than 65,535 messages outstanding
            info.wait_for_publish(timeout=600)
    if info is not None:
        info.wait_for_publish(timeout=600)
    client.disconnect()
    client.loop_stop()


def consumer(args) -> None:
    from bench.setup import django_on_scratch_database

    django_on_scratch_database(script="bench/mqtt.py", suffix="_bench_mqtt")
    from django.core.management import call_command

    import sensors.transports.mqtt

    if args.window:
        sensors.transports.mqtt.RECEIVE_MAXIMUM_LIMIT = args.window
    call_command(
        "consume_readings", "--source", "mqtt", "--topic-prefix", args.prefix, "--client-id", f"{args.prefix}-consumer"
    )


if __name__ == "__main__":
    main()
