"""Running `manage.py consume_readings` in a test: the command in the main thread (as in production, so SIGTERM
reaches its handler), a helper thread playing the devices and then stopping it with SIGTERM."""

import os
import signal
import threading
import time
from collections.abc import Callable
from io import StringIO

from django.core.management import call_command
from django.db import OperationalError, connection


def run_consumer_until(*args: str, ready: Callable[[], bool], devices: Callable[[], None], timeout: float = 60) -> str:
    """Run `consume_readings *args` until `devices()` returns, which is called once `ready()` holds; then SIGTERM.
    Returns the command's stdout; an error of the devices' thread is raised here."""
    errors: list[BaseException] = []
    returned = threading.Event()  # the command is over: no SIGTERM then (it would stop the test run itself)

    def play():
        try:
            wait_until(ready)
            devices()
        except BaseException as exc:  # noqa: BLE001 (raised in the test's thread below)
            errors.append(exc)
        finally:
            connection.close()  # this thread's own database connection
            if not returned.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    out = StringIO()
    try:
        call_command("consume_readings", *args, stdout=out, stderr=StringIO())
    finally:
        returned.set()
        signal.signal(signal.SIGTERM, previous)
        thread.join(timeout)
    if errors:
        raise errors[0]
    return out.getvalue()


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not holds(predicate):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


def holds(predicate: Callable[[], bool]) -> bool:
    try:
        return predicate()
    except OperationalError:  # SQLite's shared in-memory test database: the consumer holds the table
        return False
