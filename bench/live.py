"""Live delivery: publish → WebSocket latency and loss at 2,000 readings/s with 50 clients (docs/benchmarks.md).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python -m bench.live [--clients 50] [--sensors 1] [--rate 2000] [--seconds 20] \
        [--source stream] [--batch-ms 20]

The whole production path, each part its own process, on the real PostgreSQL (a scratch database
`<name>_bench_live` next to DATABASE_URL's) and Redis:

    publisher ──Redis──▶ manage.py consume_readings ──PostgreSQL, channel layer──▶ daphne ──WebSocket──▶ clients

- daphne serves `config.asgi:application` with the production settings;
- `manage.py consume_readings --source <source> --batch-ms <ms>` stores readings and broadcasts each batch;
- `--clients` WebSocket clients (the `websockets` library, token authentication) each watch one of `--sensors`
  sensors (spread evenly) and ask for no history;
- a publisher process sends `--rate` readings/s for `--seconds` s, spread evenly over the sensors, in ticks of
  5 ms. Each reading's timestamp is the wall-clock time it was published (microseconds, strictly increasing per
  sensor), so every client computes publish → delivery latency from the reading itself.

It prints p50/p99/max latency over every (client, reading), the readings lost (expected per client minus received,
summed), duplicates, and the ratio to the target (p99 < 100 ms, nothing lost). `live_latency(...)` returns the same
figures for other scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.server import free_port, wait_for
from bench.setup import django_on_scratch_database

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 100.0
TICK = 0.005  # the publisher sends a tick's share of readings every 5 ms
DRAIN_SECONDS = 15.0  # after the last publish, how long clients wait for what is still under way


@dataclass
class LiveResult:
    clients: int
    sensors: int
    rate: int
    seconds: float
    source: str
    batch_ms: int
    published: int
    publish_seconds: float
    stored: int  # readings in the database afterwards: published - stored were lost before the live path
    expected: int  # deliveries: readings of each client's sensor, summed over clients
    received: int
    lost: int
    duplicates: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    cpu_seconds: dict[str, float]  # CPU time of each of our processes during the run (user + system)
    dropped_warnings: int  # "live messages dropped" warnings logged by the consumer (channels-redis capacity)

    @property
    def ratio(self) -> float:
        """p99 as a fraction of the target: below 1.0 meets it."""
        return self.p99_ms / TARGET_P99_MS

    @property
    def met(self) -> bool:
        return self.p99_ms < TARGET_P99_MS and self.lost == 0


def live_latency(
    *,
    clients: int = 50,
    sensors: int = 1,
    rate: int = 2000,
    seconds: float = 20.0,
    source: str = "stream",
    batch_ms: int = 20,
    consumer_args: tuple[str, ...] = (),
    port: int | None = None,
) -> LiveResult:
    """Run the measurement once and return its figures. Django must be set up on a PostgreSQL database with
    REDIS_URL set (`bench.setup.django_on_scratch_database`). `source` is `consume_readings --source`; `pubsub`
    publishes on a channel of its own (pub/sub ignores Redis database numbers), `stream` adds entries to a stream
    key of its own in REDIS_URL's database (deleted afterwards)."""
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        sys.exit("bench/live.py needs Redis: set REDIS_URL=redis://...")
    keys = [f"bench.live-{n}" for n in range(sensors)]
    token = _prepare(keys)
    port = port or free_port()
    channel = f"bench_live_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "False",
        "LOG_LEVEL": "WARNING",
    }
    # The channel (pub/sub) or stream key (stream) of this run only.
    source_args = ["--channel", channel] if source == "pubsub" else ["--stream", channel, "--consumer", "bench-live"]
    logs = tempfile.TemporaryDirectory(prefix="bench-live-")
    server_log = open(Path(logs.name) / "daphne.log", "w+")  # noqa: SIM115 (closed in finally)
    consumer_log = open(Path(logs.name) / "consumer.log", "w+")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    consumer = subprocess.Popen(
        [
            sys.executable, "manage.py", "consume_readings", "--source", source, "--batch-ms", str(batch_ms),
            *source_args, *consumer_args,
        ],
        cwd=ROOT, env=env, stdout=consumer_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/healthcheck/live")
        wait_for_consumer(consumer, consumer_log, source=source, channel=channel, redis_url=redis_url)
        load_before = os.getloadavg()
        cpu_before = {
            "daphne": process_cpu(server.pid),
            "consume_readings": process_cpu(consumer.pid),
            "clients": time.process_time(),
        }
        figures = asyncio.run(
            _measure(
                port=port, token=token, keys=keys, clients=clients, rate=rate, seconds=seconds,
                source=source, channel=channel, redis_url=redis_url,
            )
        )  # fmt: skip
        load_after = os.getloadavg()
        cpu = {
            "daphne": process_cpu(server.pid) - cpu_before["daphne"],
            "consume_readings": process_cpu(consumer.pid) - cpu_before["consume_readings"],
            "clients": time.process_time() - cpu_before["clients"],
            "publisher": figures.pop("publisher_cpu"),
        }
    except BaseException:
        for name, log in (("daphne", server_log), ("consumer", consumer_log)):
            log.seek(0)
            print(f"--- {name} log (last 3,000 characters) ---\n{log.read()[-3000:]}", file=sys.stderr)
        raise
    finally:
        for process in (consumer, server):
            process.terminate()
        for process in (consumer, server):
            process.wait(30)
        consumer_log.seek(0)
        dropped = consumer_log.read().count("live messages dropped")
        if source == "stream":
            import redis

            redis.Redis.from_url(redis_url).delete(channel)
        server_log.close()
        consumer_log.close()
        logs.cleanup()
    from sensors.models import Reading

    stored = Reading.objects.filter(sensor__key__in=keys).count()
    return LiveResult(
        stored=stored,
        clients=clients, sensors=sensors, rate=rate, seconds=seconds, source=source, batch_ms=batch_ms,
        load_before=load_before, load_after=load_after, cpu_seconds=cpu, dropped_warnings=dropped, **figures,
    )  # fmt: skip


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _prepare(keys: list[str]) -> str:
    """Fresh sensors (no readings) and a viewer's API token."""
    from accounts.models import User
    from accounts.services import api_token_create, user_create
    from sensors.models import Reading, Sensor

    for key in keys:
        sensor, _ = Sensor.objects.get_or_create(key=key)
        Reading.objects.filter(sensor=sensor).delete()
    User.objects.filter(email="bench-live@example.com").delete()
    _, token = api_token_create(user=user_create(email="bench-live@example.com", role="viewer"))
    return token


def wait_for_consumer(process, log, *, source: str, channel: str, redis_url: str, timeout: float = 30) -> None:
    """Until the consumer listens (pub/sub drops what is published before it subscribes)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                log.seek(0)
                sys.exit(f"consume_readings exited: {log.read()[-3000:]}")
            if source == "stream" and client.exists(channel) and client.xinfo_consumers(channel, "sensorhub"):
                return  # its group exists and it has read once
            if source == "pubsub" and client.pubsub_numsub(channel)[0][1] > 0:
                return
            if time.monotonic() > deadline:
                sys.exit("consume_readings did not start reading within 30 s")
            time.sleep(0.1)
    finally:
        client.close()


async def _measure(*, port, token, keys, clients, rate, seconds, source, channel, redis_url) -> dict[str, float | int]:
    from websockets.asyncio.client import connect

    watch = [keys[n % len(keys)] for n in range(clients)]
    latencies = [array("d") for _ in range(clients)]
    seen: list[set[str]] = [set() for _ in range(clients)]
    duplicates = [0] * clients
    sockets = []
    for key in watch:
        socket = await connect(
            f"ws://127.0.0.1:{port}/ws/sensors/{key}/readings/?history=0",
            additional_headers={"Authorization": f"Token {token}"},
            compression=None,
            max_size=None,
            open_timeout=30,
        )
        first = json.loads(await socket.recv())
        if first.get("type") != "history":
            sys.exit(f"the socket was refused: {first}")
        sockets.append(socket)

    published_at: dict[str, float] = {}  # timestamp text → epoch seconds, parsed once for all clients

    def when(stamp: str) -> float:
        epoch = published_at.get(stamp)
        if epoch is None:
            epoch = published_at[stamp] = datetime.fromisoformat(stamp).timestamp()
        return epoch

    async def listen(n: int, socket) -> None:
        async for text in socket:
            arrived = time.time()
            message = json.loads(text)  # each client decodes its own frame, as a real one would
            for reading in message["readings"]:
                stamp = reading["timestamp"]
                if stamp in seen[n]:
                    duplicates[n] += 1
                    continue
                seen[n].add(stamp)
                latencies[n].append(arrived - when(stamp))

    listeners = [asyncio.create_task(listen(n, socket)) for n, socket in enumerate(sockets)]
    context = multiprocessing.get_context("spawn")
    counts = context.Queue()
    publisher = context.Process(
        target=publish, args=(redis_url, source, channel, keys, rate, seconds, counts), daemon=True
    )
    publisher.start()
    while publisher.is_alive():
        await asyncio.sleep(0.1)
    if publisher.exitcode != 0:
        sys.exit(f"the publisher failed (exit code {publisher.exitcode})")
    published_per_key, publish_seconds, publisher_cpu = counts.get(timeout=10)
    expected = sum(published_per_key[key] for key in watch)
    deadline = time.monotonic() + DRAIN_SECONDS
    while sum(len(s) for s in seen) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for socket in sockets:
        await socket.close()
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)

    everything = sorted(value for client in latencies for value in client)
    received = len(everything)
    if not everything:
        sys.exit("no reading reached any client")
    quantiles = statistics.quantiles(everything, n=100, method="inclusive")
    return {
        "published": sum(published_per_key.values()),
        "publish_seconds": publish_seconds,
        "expected": expected,
        "received": received,
        "lost": expected - received,
        "duplicates": sum(duplicates),
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "max_ms": everything[-1] * 1000,
        "publisher_cpu": publisher_cpu,
    }


def publish(redis_url, source, channel, keys, rate, seconds, counts) -> None:
    """The devices (a process of its own, so that pacing does not compete with the clients): `rate` readings/s for
    `seconds`, each stamped with its publish time, strictly increasing per sensor."""
    import redis

    client = redis.Redis.from_url(redis_url)
    total = int(rate * seconds)
    per_tick = rate * TICK
    published = dict.fromkeys(keys, 0)
    last = dict.fromkeys(keys, datetime(1970, 1, 1, tzinfo=UTC))
    step = timedelta(microseconds=1)
    sent = 0
    started = time.perf_counter()
    tick = 0
    while sent < total:
        tick += 1
        due = min(total, round(tick * per_tick))
        pipe = client.pipeline(transaction=False)
        for n in range(sent, due):
            key = keys[n % len(keys)]
            stamp = max(datetime.now(UTC), last[key] + step)
            last[key] = stamp
            payload = json.dumps({"sensor": key, "value": float(n % 1000), "timestamp": stamp.isoformat()})
            if source == "pubsub":
                pipe.publish(channel, payload)
            else:
                pipe.xadd(channel, {"data": payload})
            published[key] += 1
        pipe.execute()
        sent = due
        pause = started + tick * TICK - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    counts.put((published, time.perf_counter() - started, time.process_time()))
    client.close()


def report(result: LiveResult) -> str:
    verdict = "MET" if result.met else "NOT MET"
    lines = [
        "",
        f"live delivery: {result.clients} clients on {result.sensors} sensor(s), {result.rate:,} readings/s for "
        f"{result.seconds:g} s, consume_readings --source {result.source} --batch-ms {result.batch_ms}",
        f"  published          {result.published:>12,} readings in {result.publish_seconds:.2f} s "
        f"({result.published / result.publish_seconds:,.0f}/s)",
        f"  stored             {result.stored:>12,} (in the database afterwards)",
        f"  deliveries         {result.expected:>12,} expected (readings × clients watching their sensor)",
        f"  received           {result.received:>12,}",
        f"  lost               {result.lost:>12,}",
        f"  duplicates         {result.duplicates:>12,}",
        f"  latency p50        {result.p50_ms:>12.1f} ms",
        f"  latency p99        {result.p99_ms:>12.1f} ms   ({result.ratio:.2f}× the {TARGET_P99_MS:.0f} ms target)",
        f"  latency max        {result.max_ms:>12.1f} ms",
        f"  dropped warnings   {result.dropped_warnings:>12,} (channels-redis over capacity, from the consumer's log)",
        "  CPU seconds        " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in result.cpu_seconds.items()),
        "  load average       before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
            *result.load_before, *result.load_after
        ),
        f"  target (p99 < {TARGET_P99_MS:.0f} ms, nothing lost): {verdict}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="WebSocket clients (default 50)")
    parser.add_argument("--sensors", type=int, default=1, help="sensors the clients spread over (default 1)")
    parser.add_argument("--rate", type=int, default=2000, help="readings published per second (default 2,000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to publish (default 20)")
    parser.add_argument("--source", default="stream", help="consume_readings --source (default stream)")
    parser.add_argument("--batch-ms", type=int, default=20, help="consume_readings --batch-ms (default 20)")
    parser.add_argument("--port", type=int, help="daphne's port (default: a free one)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    django_on_scratch_database(script="bench/live.py", suffix="_bench_live")
    result = live_latency(
        clients=args.clients, sensors=args.sensors, rate=args.rate, seconds=args.seconds, source=args.source,
        batch_ms=args.batch_ms, port=args.port,
    )  # fmt: skip
    print(report(result))
    if args.json:
        print(json.dumps({**asdict(result), "ratio": result.ratio, "met": result.met}))


if __name__ == "__main__":
    main()
