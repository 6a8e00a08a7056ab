"""The load scenario of `python -m bench.load` (docs/benchmarks.md, "Load"): devices writing, dashboards reading and
live WebSocket clients, together against one running server.

It is run by the runner (`bench/load/runner.py`), which seeds the database and passes what the users need in a
JSON file named by BENCH_LOAD_CONFIG:

    {"devices": 10, "batch": 50, "device_key": "...", "readers": 20, "viewer_tokens": [...],
     "sensors": ["load.s-00", ...], "platforms": ["load-p0", ...], "clients": 50, "live_keys": ["load.live-0"],
     "status": "<path>", "result": "<path>"}

- `DeviceUser` (`devices` of them, one sensor each): every second, one `POST /api/v1/readings/` of `batch` readings
  stamped with the current time, `Authorization: Device <key>` (a platform's key).
- `DashboardUser` (`readers`, each with a viewer token of its own): what a dashboard asks, 1 to 3 s apart: the
  sensors list, latest values of a platform, a sensor's latest value, raw readings of the last hour, 1-hour
  buckets over 7 days, 5-minute buckets over a day, the anomalies list.
- `LiveUser` (`clients`, each with a viewer token): holds `ws/sensors/<key>/readings/?history=0` open (websocket-
  client, cooperative under locust's gevent) on one of `live_keys` and measures, for every reading received, the
  time since the reading's timestamp (the publisher stamps each reading with the time it is published). Each frame
  is also reported to locust as a "WS" request whose time is its oldest reading's latency.

The live figures (latency quantiles over every reading and client, readings received per sensor, duplicates or
out-of-order readings, disconnects) are written to `result` when locust quits; `status` is rewritten every 0.5 s
with the connected sockets and readings received, so that the runner knows when to start publishing and when
everything has arrived.
"""

from __future__ import annotations

import json
import os
import random
import time
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gevent  # type: ignore[import-untyped]  # (no stubs; locust runs on it)
import websocket
from locust import HttpUser, User, between, constant_pacing, events, task

CONFIG = json.loads(Path(os.environ["BENCH_LOAD_CONFIG"]).read_text())


class Live:
    """What every socket of this process measured (one locust process, so plain module state)."""

    latencies = array("d")  # seconds, one per reading received, all sockets
    received: dict[str, int] = {}  # per live sensor, summed over its sockets (duplicates included)
    stamps: list[array] = []  # per connection, the epoch of each reading received (duplicates are found at the end)
    connections: list[dict] = []  # per connection: its sensor, when it opened, whether the server closed it
    reordered = 0  # readings older than the one before on the same socket (batches committed out of order)
    connected = 0
    disconnects = 0
    frames = 0
    epoch: dict[str, float] = {}  # timestamp text → epoch seconds, parsed once for all sockets


def _epoch(stamp: str) -> float:
    value = Live.epoch.get(stamp)
    if value is None:
        if len(Live.epoch) > 200_000:  # each stamp is read by every socket within a second or so
            Live.epoch.clear()
        value = Live.epoch[stamp] = datetime.fromisoformat(stamp).timestamp()
    return value


class DeviceUser(HttpUser):
    fixed_count = CONFIG["devices"]
    wait_time = constant_pacing(1)

    def on_start(self) -> None:
        self.number = _next("device")
        self.sensor = f"load.dev-{self.number:03d}"
        self.last = datetime.now(UTC)
        self.headers = {"Authorization": f"Device {CONFIG['device_key']}"}

    @task
    def post_batch(self) -> None:
        now = max(datetime.now(UTC), self.last + timedelta(microseconds=CONFIG["batch"]))
        step = timedelta(microseconds=1)
        batch = [
            {"sensor": self.sensor, "value": random.random() * 100, "timestamp": (now - step * n).isoformat()}  # noqa: S311
            for n in range(CONFIG["batch"])
        ]
        self.last = now
        self.client.post("/api/v1/readings/", json=batch, headers=self.headers, name="POST readings (device batch)")


class DashboardUser(HttpUser):
    fixed_count = CONFIG["readers"]
    wait_time = between(1, 3)

    def on_start(self) -> None:
        token = CONFIG["viewer_tokens"][_next("reader") % len(CONFIG["viewer_tokens"])]
        self.client.headers["Authorization"] = f"Token {token}"

    def _sensor(self) -> str:
        return random.choice(CONFIG["sensors"])  # noqa: S311

    def _get(self, path: str, name: str, params: dict | None = None) -> None:
        self.client.get(path, params=params, name=name)

    @task(3)
    def sensors_list(self) -> None:
        self._get("/api/v1/sensors/", "GET sensors list")

    @task(3)
    def latest_of_platform(self) -> None:
        platform = random.choice(CONFIG["platforms"])  # noqa: S311
        self._get("/api/v1/readings/latest/", "GET latest values (platform)", {"platform": platform})

    @task(2)
    def sensor_latest(self) -> None:
        self._get(f"/api/v1/sensors/{self._sensor()}/latest/", "GET sensor latest")

    @task(2)
    def raw_last_hour(self) -> None:
        start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        self._get(f"/api/v1/sensors/{self._sensor()}/readings/", "GET readings raw (1 h)", {"start": start})

    @task(2)
    def buckets_week(self) -> None:
        start = (datetime.now(UTC) - timedelta(days=7)).isoformat()
        params = {"bucket": "1h", "start": start}
        self._get(f"/api/v1/sensors/{self._sensor()}/readings/", "GET readings 1h buckets (7 d)", params)

    @task(1)
    def buckets_day(self) -> None:
        start = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        params = {"bucket": "5m", "start": start}
        self._get(f"/api/v1/sensors/{self._sensor()}/readings/", "GET readings 5m buckets (1 d)", params)

    @task(1)
    def anomalies(self) -> None:
        self._get("/api/v1/anomalies/", "GET anomalies list")


class LiveUser(User):
    """One browser-like client holding a socket; its task never returns while the socket is open."""

    fixed_count = CONFIG["clients"]
    wait_time = constant_pacing(1)

    def on_start(self) -> None:
        number = _next("client")
        self.key = CONFIG["live_keys"][number % len(CONFIG["live_keys"])]
        self.token = CONFIG["viewer_tokens"][number % len(CONFIG["viewer_tokens"])]
        self.socket: websocket.WebSocket | None = None
        self.failures = 0

    def on_stop(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None
            Live.connected -= 1

    def _fire(self, name: str, started: float, response_time_ms: float, length: int, exc: Exception | None) -> None:
        events.request.fire(
            request_type="WS", name=name, response_time=response_time_ms, response_length=length, exception=exc,
            context={}, start_time=started, url=None,
        )  # fmt: skip

    def _connect(self) -> websocket.WebSocket:
        host = self.host.replace("http://", "ws://").replace("https://", "wss://")
        started = time.time()
        try:
            socket = websocket.create_connection(
                f"{host}/ws/sensors/{self.key}/readings/?history=0",
                header=[f"Authorization: Token {self.token}"],
                timeout=30,
                enable_multithread=False,
                # Its UTF-8 check is a Python loop over every byte (without the optional wsaccel): at 2,500
                # frames/s it, not the server, was the bottleneck. json.loads of the str checks the text anyway.
                skip_utf8_validation=True,
            )
            first = json.loads(socket.recv())
            if first.get("type") != "history":
                raise RuntimeError(f"refused: {first}")
        except Exception as exc:
            self._fire("WS connect", started, (time.time() - started) * 1000, 0, exc)
            raise
        self._fire("WS connect", started, (time.time() - started) * 1000, 0, None)
        Live.connected += 1
        return socket

    @task
    def listen(self) -> None:
        try:
            self.socket = self._connect()
        except Exception:
            # Back off as a careful client would: retrying every second made a storm of connects (each waits for
            # the server's database thread) that kept every socket from opening.
            self.failures += 1
            gevent.sleep(min(30.0, 2.0 ** (self.failures - 1)) * random.uniform(0.5, 1.0))  # noqa: S311
            return
        self.failures = 0
        last = 0.0
        received = Live.received
        received.setdefault(self.key, 0)
        stamps = array("d")
        Live.stamps.append(stamps)
        record = {"key": self.key, "opened": time.time(), "reset": False}
        Live.connections.append(record)
        while True:
            try:
                text = self.socket.recv()
            except Exception as exc:  # the server closed it or the network failed: counted, then reconnect
                if self.socket is None:  # on_stop closed it
                    return
                Live.disconnects += 1
                record["reset"] = True
                Live.connected -= 1
                self._fire("WS disconnect", time.time(), 0, 0, exc)
                self.socket = None
                return
            arrived = time.time()
            if not text:
                continue
            message = json.loads(text)  # each client decodes its own frame, as a browser would
            readings = message.get("readings") or []
            oldest = 0.0
            for reading in readings:
                published = _epoch(reading["timestamp"])
                if published < last:
                    Live.reordered += 1
                last = published
                stamps.append(published)
                latency = arrived - published
                Live.latencies.append(latency)
                oldest = max(oldest, latency)
                received[self.key] += 1
            Live.frames += 1
            self._fire("WS readings frame", arrived, oldest * 1000, len(readings), None)


_counters: dict[str, int] = {}


def _next(kind: str) -> int:
    """0, 1, 2, … per kind of user, so that each user gets its own sensor or token."""
    number = _counters.get(kind, 0)
    _counters[kind] = number + 1
    return number


def _status() -> dict:
    return {
        "connected": Live.connected,
        "received": dict(Live.received),
        "frames": Live.frames,
        "disconnects": Live.disconnects,
        "time": time.time(),
    }


def _write(path: str, data: dict) -> None:
    temporary = Path(f"{path}.tmp")
    temporary.write_text(json.dumps(data))
    temporary.replace(path)  # atomic: the runner never reads half a file


@events.test_start.add_listener
def _on_test_start(environment, **kwargs) -> None:
    def report_status() -> None:
        while True:
            _write(CONFIG["status"], _status())
            gevent.sleep(0.5)

    gevent.spawn(report_status)


@events.quitting.add_listener
def _on_quitting(environment, **kwargs) -> None:
    import numpy as np

    latencies = np.frombuffer(Live.latencies, dtype=np.float64) * 1000 if Live.latencies else np.zeros(0)
    quantiles = (
        dict(zip(("p50", "p95", "p99", "max"), np.percentile(latencies, [50, 95, 99, 100]).tolist(), strict=True))
        if latencies.size
        else {}
    )
    unique = [np.unique(np.frombuffer(each, dtype=np.float64)).size if each else 0 for each in Live.stamps]
    duplicates = sum(len(each) for each in Live.stamps) - sum(unique)
    connections = [{**record, "unique": count} for record, count in zip(Live.connections, unique, strict=True)]
    requests = []
    total = environment.stats.total  # throughput over the whole run, as locust computes its total
    elapsed = (total.last_request_timestamp or total.start_time) - total.start_time
    for entry in environment.stats.entries.values():
        requests.append(
            {
                "type": entry.method,
                "name": entry.name,
                "count": entry.num_requests,
                "failures": entry.num_failures,
                "rps": entry.num_requests / elapsed if elapsed else 0.0,
                "p50": entry.get_response_time_percentile(0.5),
                "p95": entry.get_response_time_percentile(0.95),
                "p99": entry.get_response_time_percentile(0.99),
                "max": entry.max_response_time,
                "bytes_avg": entry.avg_content_length,
            }
        )
    errors = [
        {"type": error.method, "name": error.name, "error": str(error.error), "count": error.occurrences}
        for error in environment.stats.errors.values()
    ]
    _write(
        CONFIG["result"],
        {
            **_status(),
            "latency_ms": quantiles,
            "duplicates": duplicates,
            "connections": connections,
            "reordered": Live.reordered,
            "requests": requests,
            "errors": errors,
        },
    )
