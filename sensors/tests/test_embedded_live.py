"""The default `make run` moves: in embedded mode (SQLite, no Redis) the Procfile's real `web` and `simulate`
processes, started by honcho as `make run` starts them, deliver simulated readings to a WebSocket client.

No database of the test runner is used: the processes share a SQLite file in a temporary var/ directory, as on a
newcomer's machine, and the live messages cross processes through the embedded channel layer
(common/sqlite_layer.py).
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import websockets
from django.conf import settings

SENSOR = "sim-temperature-1"  # the first of the simulator's sensors (sensors.synthetic.fleet.sensor_specs)


def embedded_env(var_dir: Path) -> dict[str, str]:
    """The environment of `make run` on a machine with nothing configured: no DATABASE_URL, REDIS_URL, MQTT_URL."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MQTT_URL", "CI", "DJANGO_SETTINGS_MODULE"}
    }
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.dev",
        SENSORHUB_VAR_DIR=str(var_dir),
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def first_live_reading(url: str, token: str, *, after: datetime, timeout: float) -> dict:
    """Connect (retrying while the server starts or the simulator has not yet made the sensor) and return the
    first live reading stamped after `after`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with websockets.connect(url, additional_headers={"Authorization": f"Token {token}"}) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if first["type"] == "error":  # 4404 until the simulator made its sensors
                    raise ConnectionError(first)
                assert first["type"] == "history"
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
                    assert message["type"] == "readings", message
                    for reading in message["readings"]:
                        if datetime.fromisoformat(reading["timestamp"]) > after:
                            return reading
        except (OSError, ConnectionError, websockets.exceptions.InvalidStatus, websockets.ConnectionClosed):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def test_make_run_embedded_delivers_simulated_readings_to_a_websocket(tmp_path):
    env = embedded_env(tmp_path / "var")
    manage(env, "migrate", "--noinput")
    manage(env, "create_demo_admin")
    token = manage(env, "create_api_token", "admin@example.com").strip()
    assert manage(env, "list_processes").split()[:5] == ["web", "worker", "detect", "beat", "simulate"]

    port = free_port()
    honcho = subprocess.Popen(
        [str(Path(sys.executable).parent / "honcho"), "start", "--procfile", "Procfile", "--port", str(port)]
        + ["web", "simulate"],
        cwd=settings.BASE_DIR,
        env={**env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole below
    )
    started = datetime.now(UTC)
    try:
        reading = asyncio.run(
            first_live_reading(
                f"ws://127.0.0.1:{port}/ws/sensors/{SENSOR}/readings/", token, after=started, timeout=120
            )
        )
    except Exception:
        os.killpg(honcho.pid, signal.SIGTERM)
        output = honcho.communicate(timeout=30)[0].decode(errors="replace")
        pytest.fail(f"no live reading reached the socket; the processes said:\n{output[-4000:]}")
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGTERM)
            honcho.wait(timeout=30)
    assert isinstance(reading["value"], int | float)
    assert datetime.fromisoformat(reading["timestamp"]) > started
