"""Load: device writes, dashboard reads and live WebSocket clients together, with locust, against the production
processes (docs/benchmarks.md, "Load").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python -m bench.load [--duration 60] [--clients 50] [--rate 2000] [--devices 10] [--batch 50] \
        [--readers 20]

REDIS_URL should name a Redis database of the benchmark's own: the detection queue in it is emptied first.

What runs, each its own process with the production settings (`config.settings.prod`, plain HTTP, throttle rates
raised so that locust's one address measures the server and not the throttle) on the local PostgreSQL (a scratch
database `<name>_bench_load` next to DATABASE_URL's) and REDIS_URL:

- the production server (`python -m config.server`, daphne with the body cap) serving `config.asgi:application` on
  a free port;
- `manage.py consume_readings --source stream` on a stream key of this run;
- a detect worker (`celery -A config worker --queues=detection-0 --concurrency=1`), as docs/operations.md lists it;
- locust, headless (`bench/load/locustfile.py`): `--devices` devices POSTing `--batch` readings each second,
  `--readers` dashboards reading, `--clients` WebSocket clients watching `--live-sensors` sensors;
- once every socket is open, a publisher (`bench.live.publish`, its own process) adds `--rate` readings/s to the
  stream for `--duration` s, each stamped with the time it is published.

Seeded once and kept for later runs (each run adds the minutes since the last): 4 platforms of 5 sensors with
`--days` days of one reading a minute (binary COPY), 200 anomalies, viewer accounts; each run gets fresh API
tokens, a fresh device key, and empty device and live sensors.

It prints, per request type, throughput, p50/p95/p99 and failures (locust's figures; its CSV files are kept in
`--csv-dir`); the server errors in daphne's log; for the sockets, readings expected and received, lost, and the
publish → browser latency p50/p95/p99/max over every (client, reading); the stream ingest rate (readings committed
per second from the first publish to the last acknowledgement) and the largest consumer-group lag seen; the detect
queue left; and the CPU seconds of each process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.live import TARGET_P99_MS, process_cpu, publish, wait_for_consumer
from bench.server import free_port, wait_for
from bench.setup import django_on_scratch_database

ROOT = Path(__file__).resolve().parent.parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
PLATFORMS = 4
SENSORS_PER_PLATFORM = 5
ANOMALIES = 200
# After the last publish, the sockets get as long as readings keep arriving (up to DRAIN_MAX_SECONDS): a
# reading still missing when nothing has arrived for DRAIN_QUIET_SECONDS is lost, not late.
DRAIN_QUIET_SECONDS = 15.0
DRAIN_MAX_SECONDS = 180.0
DETECT_QUEUE = "detection-0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of publishing (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="WebSocket clients (default 50)")
    parser.add_argument("--live-sensors", type=int, default=1, help="sensors the clients watch (default 1)")
    parser.add_argument("--rate", type=int, default=2000, help="readings/s into the stream (default 2,000)")
    parser.add_argument("--devices", type=int, default=10, help="REST devices, one POST a second each (default 10)")
    parser.add_argument("--batch", type=int, default=50, help="readings per device POST (default 50)")
    parser.add_argument("--readers", type=int, default=20, help="dashboard users, 1-3 s apart (default 20)")
    parser.add_argument("--spawn-rate", type=float, default=20.0, help="locust users started per second")
    parser.add_argument("--days", type=int, default=7, help="days of seeded history per sensor (default 7)")
    parser.add_argument("--batch-ms", type=int, help="consume_readings --batch-ms (default: its setting)")
    parser.add_argument(
        "--csv-dir", help="where locust's CSV files and the processes' logs go (default: var/bench-load/)"
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("bench/load needs Redis: set REDIS_URL=redis://...")
    django_on_scratch_database(script="bench/load", suffix="_bench_load")
    figures = load_run(args)
    print(report(figures))
    if args.json:
        print(json.dumps(figures))


# --- seeding ---------------------------------------------------------------------------------------------------


def seed(*, days: int, devices: int, live_sensors: int, accounts: int) -> dict:
    """The data the users read and the credentials they use (see the module docstring)."""
    from django.db import connection, transaction

    from accounts.models import User
    from accounts.services import api_token_create, user_create
    from detection.models import Anomaly, Status
    from sensors.models import DeviceKey, Platform, Reading, Sensor
    from sensors.services.device_keys import device_key_create

    platforms = []
    for n in range(PLATFORMS):
        platform, _ = Platform.objects.get_or_create(slug=f"load-p{n}", defaults={"name": f"Load platform {n}"})
        platforms.append(platform)
    keys = []
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = days * 24 * 60
    for n in range(PLATFORMS * SENSORS_PER_PLATFORM):
        sensor, _ = Sensor.objects.get_or_create(
            key=f"load.s-{n:02d}", defaults={"platform": platforms[n % PLATFORMS], "unit": "m/s", "name": f"S{n}"}
        )
        keys.append(sensor.key)
        newest = (
            Reading.objects.filter(sensor=sensor).order_by("-timestamp").values_list("timestamp", flat=True).first()
        )
        # A history of `days` ending now: the missing minutes are added, so that "the last hour" holds data.
        first = max(newest + timedelta(minutes=1), now - timedelta(minutes=minutes)) if newest else None
        first = first or now - timedelta(minutes=minutes)
        if first > now:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            copy_sql = 'COPY sensors_reading (sensor_id, "timestamp", value) FROM STDIN (FORMAT BINARY)'
            with cursor.cursor.copy(copy_sql) as copy:
                copy.set_types(["int8", "timestamptz", "float8"])
                stamp = first
                while stamp <= now:
                    copy.write_row((sensor.pk, stamp, 10 + (int(stamp.timestamp()) // 60 * 7 + n) % 13))
                    stamp += timedelta(minutes=1)
        Sensor.objects.filter(pk=sensor.pk).update(latest_timestamp=now, latest_value=10.0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sensors_reading")
    seeded = Sensor.objects.filter(key__in=keys)
    have = Anomaly.objects.filter(sensor__in=seeded).count()
    Anomaly.objects.bulk_create(
        Anomaly(
            sensor=sensor,
            started_at=(start := now - timedelta(hours=n * 7 % (days * 24), minutes=n)),
            ended_at=start + timedelta(minutes=20),
            closed_at=start + timedelta(minutes=40),
            peak_level=200.0 + n,
            peak_at=start + timedelta(minutes=5),
            peak_status=Status.CRITICAL if n % 3 == 0 else Status.WARNING,
            flagged=4,
        )
        for n, sensor in zip(range(have, ANOMALIES), [*seeded] * ANOMALIES, strict=False)
    )

    # Device and live sensors start empty each run (their readings are stamped with the run's own times).
    device_platform, _ = Platform.objects.get_or_create(slug="load-devices", defaults={"name": "Load devices"})
    live_platform, _ = Platform.objects.get_or_create(slug="load-live", defaults={"name": "Load live"})
    live_keys = [f"load.live-{n}" for n in range(live_sensors)]
    for key, platform in [
        *((f"load.dev-{n:03d}", device_platform) for n in range(devices)),
        *((key, live_platform) for key in live_keys),
    ]:
        sensor, _ = Sensor.objects.update_or_create(key=key, defaults={"platform": platform})
        Reading.objects.filter(sensor=sensor).delete()
        Sensor.objects.filter(pk=sensor.pk).update(latest_timestamp=None, latest_value=None)
    DeviceKey.objects.filter(name="bench-load").delete()
    _, device_key = device_key_create(name="bench-load", platform=device_platform)

    tokens = []
    for n in range(accounts):
        email = f"bench-load-{n:03d}@example.com"
        user = User.objects.filter(email=email).first() or user_create(email=email, role="viewer")
        _verified(user)
        tokens.append(api_token_create(user=user)[1])
    return {
        "sensors": keys,
        "platforms": [platform.slug for platform in platforms],
        "live_keys": live_keys,
        "device_key": device_key,
        "viewer_tokens": tokens,
    }


def _verified(user) -> None:
    """Mark the account's email confirmed (sign-up requires it; an unconfirmed account may get no token)."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})


# --- the run ---------------------------------------------------------------------------------------------------


def load_run(args: argparse.Namespace) -> dict:
    import redis

    redis_url = os.environ["REDIS_URL"]
    csv_dir = Path(args.csv_dir or ROOT / "var" / "bench-load")
    csv_dir.mkdir(parents=True, exist_ok=True)
    print("seeding …", flush=True)
    data = seed(
        days=args.days, devices=args.devices, live_sensors=args.live_sensors, accounts=max(args.clients, args.readers)
    )
    from django.core.management import call_command

    call_command("load_baselines", verbosity=0)  # the detectors of new sensors start from the seed baselines

    client = redis.Redis.from_url(redis_url)
    client.delete(DETECT_QUEUE)  # jobs a previous run left
    stream = f"bench_load_{secrets.token_hex(4)}"
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "False",  # plain HTTP on the loopback (a proxy terminates TLS in production)
        "API_THROTTLE_ANON": "1000000/minute",  # every locust user comes from 127.0.0.1: measure the server
        "API_THROTTLE_USER": "1000000/minute",
        "LOG_LEVEL": "WARNING",
    }
    work = tempfile.TemporaryDirectory(prefix="bench-load-")
    # The processes' logs are kept next to locust's CSV files, for the tracebacks of whatever failed.
    logs = {name: open(csv_dir / f"{name}.log", "w+") for name in ("daphne", "consumer", "detect", "locust")}  # noqa: SIM115
    consumer_args = ["--batch-ms", str(args.batch_ms)] if args.batch_ms else []
    processes = {
        "daphne": subprocess.Popen(
            [sys.executable, "-m", "config.server", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=ROOT, env=env, stdout=logs["daphne"], stderr=subprocess.STDOUT,
        ),
        "consumer": subprocess.Popen(
            [
                sys.executable, "manage.py", "consume_readings", "--source", "stream", "--stream", stream,
                "--consumer", "bench-load", *consumer_args,
            ],
            cwd=ROOT, env=env, stdout=logs["consumer"], stderr=subprocess.STDOUT,
        ),
        "detect": subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=WARNING",
                f"--queues={DETECT_QUEUE}", "--concurrency=1", "--hostname=bench-load-detect@%h",
            ],
            cwd=ROOT, env=env, stdout=logs["detect"], stderr=subprocess.STDOUT,
        ),
    }  # fmt: skip
    status_path = Path(work.name) / "status.json"
    result_path = Path(work.name) / "result.json"
    config_path = Path(work.name) / "config.json"
    config_path.write_text(
        json.dumps(
            {
                **data, "devices": args.devices, "batch": args.batch, "readers": args.readers,
                "clients": args.clients, "status": str(status_path), "result": str(result_path),
            }
        )
    )  # fmt: skip
    users = args.devices + args.readers + args.clients
    try:
        wait_for(f"http://127.0.0.1:{port}/healthcheck/live")
        wait_for_consumer(processes["consumer"], logs["consumer"], source="stream", channel=stream, redis_url=redis_url)
        cpu_before = {name: tree_cpu(process.pid) for name, process in processes.items()}
        load_before = os.getloadavg()
        started = time.time()
        processes["locust"] = subprocess.Popen(
            [
                sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host",
                f"http://127.0.0.1:{port}", "-u", str(users), "-r", str(args.spawn_rate),
                "-t", f"{int(args.duration + 300)}s", "--csv", str(csv_dir / "load"), "--only-summary",
                "--stop-timeout", "5",
            ],
            cwd=ROOT, env={**os.environ, "BENCH_LOAD_CONFIG": str(config_path)},
            stdout=logs["locust"], stderr=subprocess.STDOUT,
        )  # fmt: skip
        cpu_before["locust"] = 0.0
        _wait_for_sockets(status_path, processes["locust"], logs["locust"], args.clients)
        ramp_seconds = time.time() - started

        context = multiprocessing.get_context("spawn")
        counts = context.Queue()
        publisher = context.Process(
            target=publish, args=(redis_url, "stream", stream, data["live_keys"], args.rate, args.duration, counts),
            daemon=True,
        )  # fmt: skip
        publish_started = time.time()
        publisher.start()
        max_lag = 0
        while publisher.is_alive():
            max_lag = max(max_lag, _lag(client, stream))
            time.sleep(0.5)
        if publisher.exitcode != 0:
            sys.exit(f"the publisher failed (exit code {publisher.exitcode})")
        publish_done = time.time()
        published_per_key, publish_seconds, _ = counts.get(timeout=10)
        published = sum(published_per_key.values())
        # Committed: the group has read everything and acknowledged it (XACK follows the commit).
        deadline = time.time() + 120
        while (lag := _lag(client, stream)) > 0 and time.time() < deadline:
            max_lag = max(max_lag, lag)
            time.sleep(0.05)
        ingest_seconds = time.time() - publish_started
        backlog_at_end = _lag(client, stream)

        sockets_per_key = {key: 0 for key in data["live_keys"]}
        for n in range(args.clients):
            sockets_per_key[data["live_keys"][n % len(data["live_keys"])]] += 1
        expected = sum(published_per_key[key] * count for key, count in sockets_per_key.items())
        drain_started = progress_at = time.time()
        so_far = -1
        while time.time() - progress_at < DRAIN_QUIET_SECONDS and time.time() - drain_started < DRAIN_MAX_SECONDS:
            status = _read(status_path) or {}
            received_now = sum(status.get("received", {}).values())
            if received_now >= expected:
                break
            if received_now != so_far:
                so_far, progress_at = received_now, time.time()
            time.sleep(0.2)
        drain_seconds = time.time() - publish_done
        detect_queue = client.llen(DETECT_QUEUE)
        cpu = {name: tree_cpu(process.pid) - cpu_before[name] for name, process in processes.items()}
        load_after = os.getloadavg()
        run_seconds = time.time() - started
        processes["locust"].send_signal(signal.SIGTERM)  # locust writes its figures and CSV files, then exits
        processes["locust"].wait(60)
        result = _read(result_path)
        if result is None:
            logs["locust"].seek(0)
            sys.exit(f"locust wrote no figures:\n{logs['locust'].read()[-3000:]}")
    except BaseException:
        for name, log in logs.items():
            log.seek(0)
            print(f"--- {name} log (last 3,000 characters) ---\n{log.read()[-3000:]}", file=sys.stderr)
        raise
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        client.delete(stream)
        client.close()
    logs["daphne"].seek(0)
    daphne_log = logs["daphne"].read()
    logs["consumer"].seek(0)
    consumer_log = logs["consumer"].read()
    logs["detect"].seek(0)
    detect_log = logs["detect"].read()
    for log in logs.values():
        log.close()
    work.cleanup()

    from sensors.models import Reading

    stored_live = Reading.objects.filter(sensor__key__in=data["live_keys"]).count()
    device_keys = [f"load.dev-{n:03d}" for n in range(args.devices)]  # emptied at the start of the run
    stored_devices = Reading.objects.filter(sensor__key__in=device_keys).count()
    received = sum(result["received"].values()) - result["duplicates"]
    # Sockets open before the first publish and never closed by the server: what they miss was lost in the server.
    intact = [c for c in result["connections"] if not c["reset"] and c["opened"] < publish_started]
    intact_lost = sum(published_per_key[c["key"]] - c["unique"] for c in intact)
    return {
        "args": vars(args),
        "ramp_seconds": ramp_seconds,
        "run_seconds": run_seconds,
        "drain_seconds": drain_seconds,
        "requests": result["requests"],
        "errors": result["errors"],
        "server_errors_logged": daphne_log.count("Internal Server Error"),
        "tracebacks": {
            "daphne": daphne_log.count("Traceback"),
            "consumer": consumer_log.count("Traceback"),
            "detect": detect_log.count("Traceback"),
        },
        "dropped_warnings": consumer_log.count("live messages dropped"),
        "sockets": {
            "clients": args.clients,
            "connected_at_end": result["connected"],
            "disconnects": result["disconnects"],
            "frames": result["frames"],
            "expected": expected,
            "received": received,
            "lost": expected - received,
            "duplicates": result["duplicates"],
            "intact": len(intact),
            "intact_lost": intact_lost,
            "reordered": result["reordered"],
            "latency_ms": result["latency_ms"],
        },
        "stream": {
            "rate": args.rate,
            "published": published,
            "publish_seconds": publish_seconds,
            "stored": stored_live,
            "ingest_seconds": ingest_seconds,
            "ingest_rate": stored_live / ingest_seconds,
            "max_lag": max_lag,
            "lag_at_end": backlog_at_end,
        },
        "devices_stored": stored_devices,
        "detect_queue_left": detect_queue,
        "cpu_seconds": cpu,
        "load_before": load_before,
        "load_after": load_after,
    }


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live descendants (the detect worker's job runs in a forked child)."""
    total = process_cpu(pid)
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            total += sum(tree_cpu(int(child)) for child in children.read_text().split())
        except OSError:
            continue
    return total


def _wait_for_sockets(path: Path, locust, log, clients: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while True:
        if locust.poll() is not None:
            log.seek(0)
            sys.exit(f"locust exited:\n{log.read()[-3000:]}")
        status = _read(path)
        if status is not None and status["connected"] >= clients:
            return
        if time.time() > deadline:
            sys.exit(f"only {status and status['connected']} of {clients} sockets connected within {timeout:.0f} s")
        time.sleep(0.2)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _lag(client, stream: str) -> int:
    """Entries of the stream not yet acknowledged by the consumer group: never read (lag) plus read, unacked."""
    for group in client.xinfo_groups(stream):
        if group["name"] in (b"sensorhub", "sensorhub"):
            return int(group.get("lag") or 0) + int(group["pending"])
    return 0


# --- the report ------------------------------------------------------------------------------------------------


def report(figures: dict) -> str:
    args = figures["args"]
    lines = [
        "",
        f"load: {args['devices']} devices × {args['batch']} readings/s (REST), {args['readers']} dashboard users, "
        f"{args['clients']} WebSocket clients on {args['live_sensors']} sensor(s), {args['rate']:,} readings/s into "
        f"the stream for {args['duration']:g} s; locust ran {figures['run_seconds']:.0f} s "
        f"({figures['ramp_seconds']:.1f} s until every socket was open)",
        "",
        f"{'request':<36} {'count':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'fail':>5}",
    ]
    for row in sorted(figures["requests"], key=lambda r: (r["type"], r["name"])):
        lines.append(
            f"{(row['type'] + ' ' + row['name'])[:36]:<36} {row['count']:>8,} {row['rps']:>7.1f} {row['p50']:>7.0f} "
            f"{row['p95']:>7.0f} {row['p99']:>7.0f} {row['max']:>7.0f} {row['failures']:>5,}"
        )
    lines.append("")
    if figures["errors"]:
        lines.append("failures:")
        lines += [f"  {e['count']:>6,} × {e['type']} {e['name']}: {e['error'][:160]}" for e in figures["errors"]]
    else:
        lines.append("failures: none")
    lines.append(
        f"server errors in daphne's log: {figures['server_errors_logged']}; tracebacks: "
        + ", ".join(f"{name} {count}" for name, count in figures["tracebacks"].items())
    )
    sockets, stream = figures["sockets"], figures["stream"]
    latency = sockets["latency_ms"]
    met = latency and latency["p99"] < TARGET_P99_MS and sockets["lost"] == 0
    lines += [
        "",
        f"sockets: {sockets['clients']} clients, {sockets['connected_at_end']} connected at the end, "
        f"{sockets['disconnects']} disconnects",
        f"  deliveries expected {sockets['expected']:>12,} (readings published × sockets watching their sensor)",
        f"  received            {sockets['received']:>12,} in {sockets['frames']:,} frames (duplicates not counted)",
        f"  lost                {sockets['lost']:>12,} (nothing more arrived; the last publish was "
        f"{figures['drain_seconds']:.1f} s before the end)",
        f"  of which on the {sockets['intact']} sockets open all along {sockets['intact_lost']:>5,} (the rest: sockets "
        "the server reset, and the gaps until they reconnected)",
        f"  duplicates          {sockets['duplicates']:>12,}",
        f"  out of order        {sockets['reordered']:>12,} (older than the reading before on the same socket)",
    ]
    if latency:
        lines.append(
            f"  publish → browser   p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms, "
            f"p99 {latency['p99']:.1f} ms, max {latency['max']:.1f} ms"
        )
    lines += [
        f"  target (p99 < {TARGET_P99_MS:.0f} ms, 0 lost) under this load: {'MET' if met else 'NOT MET'}",
        "",
        f"stream: {stream['published']:,} published in {stream['publish_seconds']:.1f} s "
        f"({stream['published'] / stream['publish_seconds']:,.0f}/s); {stream['stored']:,} stored, all acknowledged "
        f"{stream['ingest_seconds']:.1f} s after the first publish: {stream['ingest_rate']:,.0f} readings/s; "
        f"largest group lag {stream['max_lag']:,}, left {stream['lag_at_end']:,}",
        f"REST devices: {figures['devices_stored']:,} readings stored",
        f"detect queue left at the end: {figures['detect_queue_left']:,} jobs",
        f"'live messages dropped' warnings: {figures['dropped_warnings']}",
        f"CPU seconds in the {figures['run_seconds']:.0f} s (share of one core): "
        + ", ".join(
            f"{name} {seconds:.1f} ({seconds / figures['run_seconds']:.0%})"
            for name, seconds in figures["cpu_seconds"].items()
        ),
        "load average: before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
            *figures["load_before"], *figures["load_after"]
        ),
    ]
    return "\n".join(lines)
