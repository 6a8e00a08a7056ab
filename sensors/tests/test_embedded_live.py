"""The default `make run` moves: in embedded mode (SQLite, no Redis) the Procfile's real `web` and `simulate`
processes, started by honcho as `make run` starts them, deliver simulated readings to a WebSocket client, and to the
sensor page's chart in Chromium.

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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import websockets
from django.conf import settings
from playwright.sync_api import expect

PASSWORD = "Embedded-demo-73-harbour!"
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


@dataclass
class EmbeddedRun:
    env: dict[str, str]
    port: int
    token: str
    started: datetime
    honcho: subprocess.Popen

    def failure(self, what: str) -> None:
        os.killpg(self.honcho.pid, signal.SIGTERM)
        output = self.honcho.communicate(timeout=30)[0].decode(errors="replace")
        pytest.fail(f"{what}; the processes said:\n{output[-4000:]}")


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory) -> Iterator[EmbeddedRun]:
    """`make run`'s `web` and `simulate` processes (honcho, the real Procfile) on a fresh embedded var/ directory,
    with the demo admin's password set to PASSWORD and an API token for scripts."""
    env = embedded_env(tmp_path_factory.mktemp("embedded") / "var")
    manage(env, "migrate", "--noinput")
    manage(env, "create_demo_admin")
    manage(
        env,
        "shell",
        "-c",
        "from accounts.models import User; u = User.objects.get(email='admin@example.com'); "
        f"u.set_password('{PASSWORD}'); u.save()",
    )
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
    run = EmbeddedRun(env=env, port=port, token=token, started=datetime.now(UTC), honcho=honcho)
    yield run
    if honcho.poll() is None:
        os.killpg(honcho.pid, signal.SIGTERM)
        honcho.wait(timeout=30)


def test_make_run_embedded_delivers_simulated_readings_to_a_websocket(embedded_run):
    try:
        reading = asyncio.run(
            first_live_reading(
                f"ws://127.0.0.1:{embedded_run.port}/ws/sensors/{SENSOR}/readings/",
                embedded_run.token,
                after=embedded_run.started,
                timeout=120,
            )
        )
    except Exception:
        embedded_run.failure("no live reading reached the socket")
    assert isinstance(reading["value"], int | float)
    assert datetime.fromisoformat(reading["timestamp"]) > embedded_run.started


@pytest.mark.browser
def test_make_run_embedded_moves_the_sensor_chart_in_a_browser(embedded_run, browser):
    """A newcomer's view: log in on the page, open a simulated sensor's page, and see a new reading arrive on the
    chart without reload (the page's script appends it and updates data-last-time)."""
    # The first test (or this wait) lets the server start and the simulator make its sensors. In a thread of its
    # own: Playwright's sync API keeps an event loop marked as running in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(
            asyncio.run,
            first_live_reading(
                f"ws://127.0.0.1:{embedded_run.port}/ws/sensors/{SENSOR}/readings/",
                embedded_run.token,
                after=embedded_run.started,
                timeout=120,
            ),
        ).result()
    base = f"http://127.0.0.1:{embedded_run.port}"
    context = browser.new_context(base_url=base)
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        page.locator("input[name=login]").fill("admin@example.com")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("main form").get_by_role("button", name="Sign In").click()
        expect(page.get_by_test_id("current-user")).to_have_text("admin@example.com")

        page.goto(f"/dashboard/sensors/{SENSOR}/?range=1h")
        chart = page.get_by_test_id("sensor-chart")
        expect(chart).to_have_attribute("data-live-state", "open")
        first = chart.get_attribute("data-last-time")
        # The simulator stores a reading a second: a newer one reaches the chart over the live socket.
        page.wait_for_function(
            "previous => document.querySelector('[data-testid=sensor-chart]').dataset.lastTime !== previous",
            arg=first,
            timeout=15_000,
        )
    except Exception:
        embedded_run.failure("the sensor page's chart did not move")
    finally:
        context.close()
