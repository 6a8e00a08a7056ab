"""What every consumer loop shares: batching, retrying the database, stopping on a signal, counting."""

from __future__ import annotations

import gc
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.db.utils import InterfaceError, OperationalError

from sensors.ingest import IngestResult, ValidatedBatch, readings_store, readings_validate

logger = logging.getLogger("sensors.ingest")


# The collector's thresholds while a consumer runs: a young collection every 100,000 allocations (Python's default
# is 700), the older generations as rarely as that implies.
CONSUMER_GC_THRESHOLDS = (100_000, 50, 100)


@contextmanager
def gc_tuned() -> Iterator[None]:
    """Python's cycle collector made cheap for a long-running consumer, for the duration of the block.

    A consumer allocates a few objects per reading (readings, timestamps, tuples), nearly all freed by reference
    counting once their batch is stored. With the default thresholds the collector runs every 700 allocations and
    every so often scans every object of the process, Django's hundreds of thousands included: the stream
    consumer spent about a third of its CPU there (docs/benchmarks.md). Frozen, the objects of start-up are never
    scanned again, and a first threshold above a batch's allocations lets most of them die before a collection
    looks at them. The previous thresholds are restored and start-up's objects unfrozen afterwards (tests run
    consumers inside their own process).
    """
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*CONSUMER_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class Stopper:
    """Set by SIGTERM or SIGINT (or `stop()`); loops check it and `wait()` wakes up when it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        logger.info("stop requested", extra={"signal": signal.Signals(signum).name})
        self._event.set()

    def stop(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


class Backoff:
    """Exponential delays for reconnecting: 0.5 s, 1 s, 2 s, ... up to `maximum`."""

    def __init__(self, *, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial, self.maximum = initial, maximum
        self.current = initial

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.current = self.initial


class Batcher:
    """Holds messages until `batch_size` are waiting or `max_wait` seconds passed since the first, then hands
    them to the ingestion service in one call. A database outage is waited out (with backoff) while the batch is
    held; `on_flushed(tags)` runs after each batch is committed (a consumer collects there what it acknowledges).

    With `writers=N` (N > 0), N writer threads, each with its own database connection, store the batches while
    the caller reads and validates the next ones: the Python work of one batch overlaps the database work of
    others, and the database works on several batches at once. Batches may then commit out of order (no path
    depends on the order: latest values compare timestamps), `on_flushed` runs in the writer that committed the
    batch (keep it short: the writers are the consumer's narrowest part), and `close()` waits until every batch is
    committed. At most N batches wait for a writer, so a slow database slows the reader down instead of filling
    memory.
    """

    def __init__(
        self,
        *,
        transport: str,
        batch_size: int,
        max_wait: float,
        stopper: Stopper,
        on_flushed: Callable[[list[Any]], None] | None = None,
        stats_every: float = 10.0,
        writers: int = 0,
        **validate_options: Any,
    ) -> None:
        self.transport = transport
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.stopper = stopper
        self.on_flushed = on_flushed
        self.validate_options = validate_options
        self.messages: list[Any] = []
        self.tags: list[Any] = []
        self.first_at: float | None = None
        self.total = IngestResult()
        self.batches = 0
        self.stats_every = stats_every
        self._stats_at = time.monotonic()
        self._window = IngestResult()
        self._lock = threading.Lock()  # counters, updated by every writer
        self._writer = _WriterPool(self._store, writers) if writers else None

    def add(self, message: Any, tag: Any = None) -> None:
        if not self.messages:
            self.first_at = time.monotonic()
        self.messages.append(message)
        self.tags.append(tag)

    def extend(self, messages: list[Any], tags: list[Any]) -> None:
        """`add` of each message with its tag, in one call (a stream read hands over thousands)."""
        if not messages:
            return
        if not self.messages:
            self.first_at = time.monotonic()
        self.messages.extend(messages)
        self.tags.extend(tags)

    def discard(self) -> int:
        """Drop what is held, unwritten (an MQTT consumer after a lost connection: the broker sends it again);
        returns how many messages that was."""
        dropped = len(self.messages)
        self.messages, self.tags, self.first_at = [], [], None
        return dropped

    def time_left(self) -> float:
        """Seconds until the held batch is due (the longest wait when nothing is held)."""
        if not self.messages or self.first_at is None:
            return self.max_wait
        return max(0.0, self.max_wait - (time.monotonic() - self.first_at))

    def due(self) -> bool:
        return bool(self.messages) and (len(self.messages) >= self.batch_size or self.time_left() == 0.0)

    def flush(self) -> IngestResult | None:
        """Validate the held messages and store them (or, pipelined, queue them for the writer)."""
        if not self.messages:
            return None
        messages, tags = self.messages, self.tags
        self.messages, self.tags, self.first_at = [], [], None
        batch = readings_validate(messages=messages, **self.validate_options)
        if self._writer is None:
            return self._store(batch, tags)
        self._writer.submit(batch, tags)
        return None

    def check(self) -> None:
        """Raise the error that stopped a writer thread, if one did (the reader must stop too)."""
        if self._writer is not None:
            self._writer.raise_error()

    def close(self) -> None:
        """Store what is held and, pipelined, wait until the writer has committed everything."""
        self.flush()
        if self._writer is not None:
            self._writer.finish()

    def _store(self, batch: ValidatedBatch, tags: list[Any]) -> IngestResult:
        backoff = Backoff()
        while True:
            try:
                _connection_check()
                result = readings_store(batch=batch, transport=self.transport)
                break
            except (OperationalError, InterfaceError) as exc:
                connection.close()
                if self.stopper.stopped and backoff.current >= backoff.maximum:
                    logger.error("database unavailable at stop; batch not written", extra={"held": len(tags)})
                    raise
                delay = backoff.next()
                logger.warning(
                    "database unavailable, retrying the batch",
                    extra={"error": str(exc).strip()[:200], "held": len(tags), "retry_in": delay},
                )
                time.sleep(delay)
        if self.on_flushed:
            self.on_flushed(tags)
        with self._lock:
            self.batches += 1
            self.total.add(result)
            self._window.add(result)
            self._log_stats()
        return result

    def _log_stats(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._stats_at < self.stats_every:
            return
        elapsed = max(now - self._stats_at, 1e-9)
        logger.info(
            "ingest stats",
            extra={
                "transport": self.transport,
                **self._window.as_dict(),
                "per_second": round(self._window.stored / elapsed, 1),
                "batches": self.batches,
            },
        )
        self._stats_at, self._window = now, IngestResult()


def _connection_check() -> None:
    """Before a batch: keep this thread's connection open whatever `CONN_MAX_AGE` says, but close one an earlier
    error left unusable, so that the batch reconnects.

    A consumer is one long-lived client. With `CONN_MAX_AGE=0` (Django's default, and the development settings')
    `close_old_connections()` opened a new connection, and PostgreSQL a new backend, for every batch: the stream
    consumer lost about a quarter of its throughput to that (docs/benchmarks.md, "Ingest"). A connection lost
    mid-batch raises, and `_store` closes it and tries again.
    """
    if connection.connection is not None and connection.errors_occurred and not connection.is_usable():
        connection.close()


class _WriterPool:
    """The Batcher's writer threads: each takes the next queued batch and stores it on its own connection."""

    def __init__(self, store: Callable[[ValidatedBatch, list[Any]], IngestResult], count: int) -> None:
        self._store = store
        self._queue: queue.Queue[tuple[ValidatedBatch, list[Any]] | None] = queue.Queue(maxsize=count)
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._run, name=f"ingest-writer-{number}", daemon=True)
            for number in range(1, count + 1)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, batch: ValidatedBatch, tags: list[Any]) -> None:
        while True:
            self.raise_error()
            try:
                self._queue.put((batch, tags), timeout=0.5)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until every queued batch is stored; raise the first writer's error, if any."""
        for thread in self._threads:
            if thread.is_alive():
                self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self.raise_error()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                if self._error is None:
                    self._store(*item)
        except BaseException as exc:  # handed to the reader thread, which raises it
            self._error = exc
        finally:
            connection.close()  # this thread's own database connection
