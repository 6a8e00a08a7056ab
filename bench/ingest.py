"""Ingest throughput on PostgreSQL, each path as a ratio to raw COPY measured in the same run (docs/benchmarks.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python -m bench.ingest [--rows 300000] [--pairs 3] [--clients 2] [--paths stream,...]

It works in a scratch database, `<name>_bench_ingest` next to the one DATABASE_URL names (created and migrated if
missing). Before each run it empties the readings and roll-up tables (TRUNCATE: row deletes would leave millions
of dead rows behind for the next run to wade through, more so where autovacuum is off) and, on the partitioned
table, creates the monthly partitions of the readings' time range, as the scheduled maintenance does ahead of time
in production: every path writes into the partition its readings belong to, not the default one. It prints one line
per path:

- raw binary COPY of (sensor_id, timestamp, value) rows straight into the readings table: the physical baseline;
- the ingestion service, JSON messages as Redis delivers them, in batches of 5,000;
- the ingestion service, the same batches where every reading is already stored (all duplicates);
- the Redis stream consumer end to end (needs REDIS_URL): `manage.py consume_readings --source stream` runs as
  its own process, waiting; the clock starts at the first `XADD` of N entries (`data` JSON field, pipelined
  1,000 at a time) and stops when the group has acknowledged all N, i.e. all N are committed;
- REST: POST /api/v1/readings/ with 5,000 readings per request to a real ASGI server (daphne, production
  settings) from `--clients` concurrent clients, token authentication;
- live (needs REDIS_URL): publish → WebSocket delivery latency p50/p99 and readings lost, with 50 clients
  watching while 2,000 readings/s go through the stream consumer (`bench/live.py`, which also runs on its own
  with more options).

Raw COPY and the stream consumer run `--pairs` times, alternately: the table gives each one's median, and the last
line the median of the paired ratios (each pair measured back to back, so that the machine's drift from minute to
minute, a fifth either way on a shared 2-core machine, cancels) against the SPEC's 0.6x. The table also says
whether `sensors_reading` is partitioned or plain.

With REDIS_URL set, the live broadcast hook sends to the Redis channel layer as in production.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.server import free_port, wait_for
from bench.setup import django_on_scratch_database

ROOT = Path(__file__).resolve().parent.parent
BATCH = 5_000
STREAM_TARGET = 0.6  # SPEC: the stream consumer at least 0.6x raw COPY into the same table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="readings per path (default 300,000)")
    parser.add_argument("--clients", type=int, default=2, help="concurrent REST clients (default 2)")
    parser.add_argument(
        "--pairs", type=int, default=3, help="raw COPY and stream runs, alternately, for the ratio (default 3)"
    )
    parser.add_argument(
        "--paths", default="service,stream,rest,live", help="paths besides raw COPY (default: all of them)"
    )
    args = parser.parse_args()
    paths = set(args.paths.split(","))
    django_on_scratch_database(script="bench/ingest.py", suffix="_bench_ingest")
    from django.conf import settings

    rows = args.rows - args.rows % BATCH
    results: list[tuple[str, int, float]] = []
    # Raw COPY and the stream consumer, alternately, each on emptied tables: `--pairs` ratios measured side by side
    # (one machine's speed drifts by a fifth from minute to minute), and the median of them reported.
    copies: list[float] = []
    streams: list[float] = []
    for _ in range(args.pairs if "stream" in paths else 1):
        tables_reset(rows)
        copies.append(bench_copy(rows))
        if "stream" in paths:
            tables_reset(rows)
            streams.append(bench_stream(rows))
    results.append((f"raw COPY, {settings.SENSORS_CONSUMER_BATCH_SIZE:,}/transaction", rows, statistics.median(copies)))
    if "service" in paths:
        tables_reset(rows)
        service, replay = bench_service(rows)
        results.append((f"ingestion service, JSON messages, {BATCH:,}/batch", rows, service))
        results.append((f"ingestion service, all duplicates, {BATCH:,}/batch", rows, replay))
    if streams:
        label = f"Redis stream -> consumer -> committed, {settings.SENSORS_CONSUMER_BATCH_SIZE:,}/batch"
        results.append((label, rows, statistics.median(streams)))
    if "rest" in paths:
        tables_reset(rows)
        results.append((f"REST POST, {BATCH:,}/request, {args.clients} clients", rows, bench_rest(rows, args.clients)))

    live = None
    if "live" in paths:
        from bench.live import live_latency

        live = live_latency(source="stream")

    baseline = rows / results[0][2]
    print(f"\nreadings table: {readings_table_kind()}")
    print(f"{'path':<52} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'vs COPY':>8}")
    for label, count, seconds in results:
        rate = count / seconds
        print(f"{label:<52} {count:>9,} {seconds:>8.2f} {rate:>9,.0f} {rate / baseline:>7.2f}x")
    if streams:
        ratios = [copy / stream for copy, stream in zip(copies, streams, strict=True)]
        each = ", ".join(f"{ratio:.2f}x" for ratio in ratios)
        print(
            f"\nstream consumer / raw COPY, this run: {statistics.median(ratios):.2f}x, the median of {len(ratios)} "
            f"pairs ({each}); target at least {STREAM_TARGET}x"
        )
    if live is not None:
        from bench.live import report

        print(f"\n{report(live)}")


def readings_table_kind() -> str:
    """Whether the readings table the paths wrote into is partitioned (and into how many partitions) or plain."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = 'sensors_reading'::regclass), "
            "EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'sensors_reading'::regclass)"
        )
        partitions, partitioned = cursor.fetchone()
    return (
        f"sensors_reading, partitioned ({partitions} partitions)" if partitioned else "sensors_reading, a plain table"
    )


def tables_reset(rows: int) -> None:
    """Empty readings and roll-ups (a scratch database), create the partitions the bench's timestamps need, and
    vacuum the sensors: every batch moves its sensor's latest value, and the dead row versions that leaves (where
    autovacuum is off or behind) make each reading's foreign-key check slower, run after run."""
    from django.db import connection

    from sensors.models import Reading, ReadingHourly, Sensor
    from sensors.services.partitions import partitions_create

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Reading._meta.db_table}, {ReadingHourly._meta.db_table}")  # noqa: S608 (models' tables)
        cursor.execute(f"VACUUM {Sensor._meta.db_table}")  # noqa: S608 (the model's table)
    stamps = timestamps(rows)
    partitions_create(start=stamps[0], end=stamps[-1] + timedelta(seconds=1))


def fresh_sensor(key: str):
    """The path's sensor (its readings are gone: `tables_reset` runs before each path)."""
    from sensors.models import Sensor

    return Sensor.objects.get_or_create(key=key)[0]


def timestamps(count: int):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [start + timedelta(seconds=i) for i in range(count)]


def bench_copy(rows: int) -> float:
    """Raw COPY in transactions of the stream consumer's batch size (SENSORS_CONSUMER_BATCH_SIZE), as it commits."""
    from django.conf import settings
    from django.db import connection, transaction

    sensor = fresh_sensor("bench-copy")
    data = [(sensor.pk, ts, float(i % 1000)) for i, ts in enumerate(timestamps(rows))]
    started = time.perf_counter()
    size = settings.SENSORS_CONSUMER_BATCH_SIZE
    for start in range(0, rows, size):
        with transaction.atomic(), connection.cursor() as cursor:
            copy_sql = 'COPY sensors_reading (sensor_id, "timestamp", value) FROM STDIN (FORMAT BINARY)'
            with cursor.cursor.copy(copy_sql) as copy:
                copy.set_types(["int8", "timestamptz", "float8"])
                for row in data[start : start + size]:
                    copy.write_row(row)
    return time.perf_counter() - started


def bench_service(rows: int) -> tuple[float, float]:
    from sensors.ingest import readings_ingest
    from sensors.models import Transport

    fresh_sensor("bench-service")
    messages = [
        json.dumps({"sensor": "bench-service", "value": i % 1000 / 10, "timestamp": ts.isoformat(sep=" ")}).encode()
        for i, ts in enumerate(timestamps(rows))
    ]
    timings = []
    for _ in range(2):  # the second pass finds every reading stored already
        started = time.perf_counter()
        for start in range(0, rows, BATCH):
            readings_ingest(messages=messages[start : start + BATCH], transport=Transport.PUBSUB)
        timings.append(time.perf_counter() - started)
    return timings[0], timings[1]


def bench_stream(rows: int) -> float:
    import redis
    from django.conf import settings

    from sensors.models import Reading

    if not settings.REDIS_URL:
        sys.exit("The stream path needs Redis: set REDIS_URL (or leave `stream` out of --paths).")
    sensor = fresh_sensor("bench-stream")
    client = redis.Redis.from_url(settings.REDIS_URL)
    stream, group = f"bench_stream_{os.getpid()}", "bench"
    client.delete(stream)
    messages = [
        json.dumps({"sensor": "bench-stream", "value": i % 1000 / 10, "timestamp": ts.isoformat(sep=" ")})
        for i, ts in enumerate(timestamps(rows))
    ]
    consumer = subprocess.Popen(
        [sys.executable, "manage.py", "consume_readings", "--source", "stream", "--stream", stream,
         "--group", group, "--consumer", "bench-1"],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not client.exists(stream) or not client.xinfo_groups(stream):
            if consumer.poll() is not None or time.monotonic() > deadline:
                sys.exit("the stream consumer did not start")
            time.sleep(0.05)
        protocol = b"".join(_resp(b"XADD", stream.encode(), b"*", b"data", message.encode()) for message in messages)
        started = time.perf_counter()
        published = _send_raw(settings.REDIS_URL, protocol, replies=rows)
        while True:
            info = client.xinfo_groups(stream)[0]
            if info["entries-read"] >= rows and info["pending"] == 0:
                break
            if consumer.poll() is not None:
                sys.exit("the stream consumer died")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        print(f"stream: published {rows:,} in {published:.2f} s, all committed after {elapsed:.2f} s")
    finally:
        consumer.terminate()
        consumer.wait(30)
        client.delete(stream)
        client.close()
    stored = Reading.objects.filter(sensor=sensor).count()
    if stored != rows:
        sys.exit(f"the stream consumer stored {stored:,} readings, not {rows:,}")
    return elapsed


def _resp(*parts: bytes) -> bytes:
    """One Redis command in the wire protocol (RESP)."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


def _send_raw(url: str, protocol: bytes, *, replies: int) -> float:
    """Send pre-built commands down one socket as fast as Redis takes them (what `redis-cli --pipe` does), so
    that the publisher costs almost nothing next to the consumer; seconds until Redis answered all of them."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    started = time.perf_counter()
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379)) as sock:
        database = (parts.path or "/0").lstrip("/") or "0"
        sock.sendall(_resp(b"SELECT", database.encode()))
        sender = threading.Thread(target=sock.sendall, args=(protocol,))
        sender.start()
        lines = 0
        while lines < 2 * replies + 1:  # each XADD answers "$<n>", "<id>"; the SELECT "+OK"
            chunk = sock.recv(1 << 20)
            if not chunk:
                sys.exit("Redis closed the connection while publishing")
            if chunk.startswith(b"-") or b"\n-" in chunk:
                sys.exit(f"Redis refused a command: {chunk[:200]!r}")
            lines += chunk.count(b"\r\n")
        sender.join()
    return time.perf_counter() - started


def bench_rest(rows: int, clients: int) -> float:
    from accounts.models import User
    from accounts.services import api_token_create, user_create

    fresh_sensor("bench-rest")
    User.objects.filter(email="bench@example.com").delete()
    _, token = api_token_create(user=user_create(email="bench@example.com", role="operator"))
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "False",
        "API_THROTTLE_USER": "100000/minute",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthcheck/live")
        bodies = [
            json.dumps(
                [
                    {"sensor": "bench-rest", "value": (start + i) % 1000 / 10, "timestamp": ts.isoformat()}
                    for i, ts in enumerate(timestamps(rows)[start : start + BATCH])
                ]
            ).encode()
            for start in range(0, rows, BATCH)
        ]
        pending = list(range(len(bodies)))
        lock = threading.Lock()
        failures: list[str] = []

        def client() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    index = pending.pop()
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/readings/",
                    data=bodies[index],
                    headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (local server)
                    answer = json.load(response)
                if answer.get("stored") != BATCH:
                    failures.append(str(answer))

        threads = [threading.Thread(target=client) for _ in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if failures:
            sys.exit(f"REST answers without {BATCH} stored: {failures[:3]}")
        return elapsed
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
