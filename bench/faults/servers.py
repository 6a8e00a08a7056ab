"""Servers and processes the fault suite owns: its own redis-server, mosquitto and PostgreSQL cluster on free ports
in a temporary directory (so that restarting them never touches the shared ones), and the project's own processes
(`manage.py consume_readings`, `celery worker`, `celery beat`) run with the environment that points at them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001, S110 (a server still starting answers with errors)
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class SignalledServer:
    """A server process of ours stopped by a signal: SIGTERM (it saves what it must and exits; Redis fsyncs its
    append-only file) or SIGKILL (no chance to). Subclasses start `self.process`."""

    process: subprocess.Popen[bytes] | None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, *, kill: bool = False) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=60)
        self.process = None

    def restart(self, *, kill: bool = False, down_for: float = 1.0) -> None:
        self.stop(kill=kill)
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop(kill=True)


class OwnRedis(SignalledServer):
    """redis-server as the production compose file runs it: append-only file, `appendfsync everysec`, no RDB."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(self.dir / "redis.log"),
            ],  # fmt: skip
        )
        import redis

        wait_for(lambda: redis.Redis(port=self.port, socket_connect_timeout=0.5).ping(), timeout=30, what="redis up")
        # Loading the append-only file: PING answers LOADING errors until it is done (raised above), then PONG.


class OwnMosquitto(SignalledServer):
    """mosquitto with persistence (sessions, subscriptions and queued QoS 1 messages survive a clean restart), as
    config/mosquitto.conf configures the compose broker."""

    def __init__(self, workdir: Path, *, autosave_interval: int = 60) -> None:
        self.dir = workdir / "mosquitto"
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o777)  # noqa: S103 (mosquitto started as root drops to its own user, which writes here)
        self.port = free_port()
        self.config = self.dir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.dir}/\nautosave_interval {autosave_interval}\n"
            "max_queued_messages 1000000\nlog_dest none\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)])
        wait_for(lambda: port_open(self.port), timeout=30, what="mosquitto up")


class OwnPostgres:
    """A throwaway PostgreSQL 15 cluster (trust authentication, user postgres), run as the `postgres` user when
    this script runs as root."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "postgres"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres")
            shutil.chown(self.dir, "postgres")
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/sensorhub"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "sensorhub")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"), "-w",
                  "start")  # fmt: skip

    def stop(self, *, mode: str = "fast") -> None:
        """`fast` (clients disconnected, clean shutdown) or `immediate` (no checkpoint: recovery at the next start,
        as after a crash)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, *, mode: str = "fast", down_for: float = 1.0) -> None:
        self.stop(mode=mode)
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop(mode="immediate")


class Process:
    """One of the project's processes (`python manage.py ...` or `python -m celery ...`), its output in a log file.
    `kill()` is kill -9 of it (and, with `group=True`, of the processes it started: a Celery worker's pool)."""

    def __init__(self, args: list[str], *, env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, *self.args], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, *, group: bool = False) -> None:
        assert self.process is not None
        if group:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.kill()
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=30)

    def close(self) -> None:
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a Celery worker's pool processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found
