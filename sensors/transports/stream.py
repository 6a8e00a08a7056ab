"""The no-loss path: readings appended to a Redis stream, read through a consumer group.

Each entry carries either a `data` field holding the JSON message (`XADD sensor_stream * data '{"sensor": ...}'`)
or the fields `sensor`, `value` and `timestamp` themselves. An entry is acknowledged (`XACK`) only after the
batch holding it is committed, so a consumer killed at any moment leaves its unacknowledged entries pending in the
group; they are read again when it restarts (its own pending entries) or taken over by another consumer after
`claim_idle_ms` (`XAUTOCLAIM`). An entry stored but not yet acknowledged is read twice: the second time its
reading is a duplicate of the stored one (unique sensor and timestamp) and is counted, never stored again.

Several consumers in one group share the work: Redis hands each new entry to exactly one of them.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from sensors.transports.heartbeat import Heartbeat
from sensors.transports.runner import Backoff, Batcher, Stopper

logger = logging.getLogger("sensors.ingest")

# An entry as Redis sends it: its id and its fields, a flat [name, value, ...] list from XREADGROUP (read raw,
# see `StreamReader`) or a {name: value} dict from XAUTOCLAIM; None once the entry was deleted from the stream.
Entry = tuple[bytes, list[bytes] | dict[bytes, bytes] | None]


def default_consumer_name() -> str:
    """The host name: a consumer restarted on the same host reads its own pending entries back at once."""
    return socket.gethostname()


@dataclass(frozen=True)
class StreamOptions:
    stream: str
    group: str
    consumer: str
    count: int  # entries per read (the batch size)
    claim_idle_ms: int  # entries pending this long with another consumer are taken over
    claim_every: float = 30.0  # seconds between looks for entries abandoned by other consumers
    trim: bool = True  # drop entries every group of the stream has acknowledged
    trim_every: float = 5.0


def entry_message(fields: list[bytes] | dict[bytes, bytes]) -> Any:
    """What the ingestion service validates for one entry: the `data` JSON as it came, or the fields as text."""
    if type(fields) is list and len(fields) == 2 and fields[0] == b"data":
        return fields[1]  # the common case, kept cheap
    pairs = fields.items() if isinstance(fields, dict) else zip(fields[::2], fields[1::2], strict=True)
    decoded = {_text(name): value for name, value in pairs}
    if "data" in decoded:
        return decoded["data"]
    return {name: _text(value) for name, value in decoded.items()}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class StreamReader:
    """Consumer-group reads on one stream: own pending entries first, then entries idle at dead consumers,
    then new ones. Acknowledges and trims on request."""

    def __init__(self, client: redis.Redis, options: StreamOptions) -> None:
        self.client = client
        # redis-py turns each entry's fields into a dict; the flat list Redis sends is all we need, and skipping
        # that conversion saves a few microseconds per entry (measured in bench/ingest.py).
        client.set_response_callback("XREADGROUP", lambda response, **options: response)
        self.options = options
        self._pending_from: bytes | None = b"0"  # own pending entries are read before new ones
        self._claim_at = 0.0  # monotonic time of the next XAUTOCLAIM sweep
        self._trim_at = 0.0

    def group_ensure(self) -> None:
        """Create the group (and the stream) if missing; a new group starts at the stream's first entry."""
        try:
            self.client.xgroup_create(self.options.stream, self.options.group, id="0", mkstream=True)
            logger.info("consumer group created", extra={"stream": self.options.stream, "group": self.options.group})
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def restart(self) -> None:
        """After a reconnect: read own pending entries again and look for abandoned ones at once."""
        self._pending_from = b"0"
        self._claim_at = 0.0

    def read(self, *, block_ms: int) -> list[Entry]:
        """The next entries to store: at most `count`, waiting up to `block_ms` for new ones when nothing is owed."""
        o = self.options
        if self._pending_from is not None:
            entries = self._read_group(self._pending_from, block=None)
            if entries:
                self._pending_from = entries[-1][0]
                logger.info("re-reading own pending entries", extra={"entries": len(entries)})
                return entries
            self._pending_from = None
        if time.monotonic() >= self._claim_at:
            self._claim_at = time.monotonic() + o.claim_every
            claimed = list(self._claim_idle())
            if claimed:
                logger.info("claimed entries of idle consumers", extra={"entries": len(claimed)})
                self._claim_at = 0.0  # a dead consumer may have left more: look again at the next read
                return claimed
        return self._read_group(b">", block=block_ms)

    def _read_group(self, start: bytes, *, block: int | None) -> list[Entry]:
        o = self.options
        # Typed by redis-py as the union of both protocols' shapes, unpacked below by the one received.
        reply: Any = self.client.xreadgroup(o.group, o.consumer, {o.stream: start}, count=o.count, block=block)
        if not reply:
            return []
        # RESP3 replies are a {stream: entries} map, RESP2 ones a [[stream, entries]] list.
        return next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]

    def _claim_idle(self) -> Iterator[Entry]:
        o = self.options
        start = "0-0"
        taken = 0
        while taken < o.count:
            next_start, entries, *deleted = self.client.xautoclaim(
                o.stream, o.group, o.consumer, min_idle_time=o.claim_idle_ms, start_id=start, count=o.count - taken
            )
            if deleted and deleted[0]:
                # Pending entries deleted from the stream (trimmed by someone else): nothing left to store.
                self.client.xack(o.stream, o.group, *deleted[0])
                logger.warning("pending entries no longer in the stream", extra={"entries": len(deleted[0])})
            taken += len(entries)
            yield from entries
            if next_start in (b"0-0", "0-0"):
                return
            start = next_start

    def ack(self, ids: list[bytes]) -> None:
        if ids:
            self.client.xack(self.options.stream, self.options.group, *ids)
        if self.options.trim and time.monotonic() >= self._trim_at:
            self._trim_at = time.monotonic() + self.options.trim_every
            try:
                self.trim()
            except redis.ResponseError:  # housekeeping: it never stops ingestion, the next one tries again
                logger.warning("stream trim failed", exc_info=True)

    def trim(self) -> int:
        """Delete the entries that every group of the stream has read and acknowledged; returns how many.

        The cut is the oldest entry some group still needs: its oldest pending entry, or the last entry it was
        delivered when none is pending. Other groups reading the same stream are respected.
        """
        stream = self.options.stream
        cut: tuple[int, int] | None = None
        for group in self.client.xinfo_groups(stream):
            name, last = group["name"], group["last-delivered-id"]
            needed = last
            if group["pending"]:
                # None when another writer acknowledged them in the meantime: then `last` is what is needed.
                needed = self.client.xpending(stream, name)["min"] or last
            parsed = _parse_id(needed)
            cut = parsed if cut is None else min(cut, parsed)
        if cut is None or cut == (0, 0):
            return 0
        return self.client.xtrim(stream, minid=f"{cut[0]}-{cut[1]}", approximate=False)


def stream_status(client: redis.Redis, *, stream: str, group: str) -> dict[str, Any] | None:
    """How the group keeps up, for the health check: entries not yet read (`lag`; None when Redis cannot tell, e.g.
    after entries were deleted out of order), read but not yet committed (`pending`), the consumers, and how long
    ago the most recent of them read (`idle_ms`). None while the stream or the group does not exist."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no such key: nothing was ever added, and no consumer has started
        return None
    found = [g for g in groups if _text(g["name"]) == group]
    if not found:
        return None
    consumers = client.xinfo_consumers(stream, group)
    return {
        "lag": found[0].get("lag"),
        "pending": found[0]["pending"],
        "consumers": len(consumers),
        "idle_ms": min((c["idle"] for c in consumers), default=None),
    }


def _parse_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


_GONE = ("NOGROUP", "UNBLOCKED")  # Redis's replies when the stream or the group no longer exists


def stream_consume(*, redis_url: str, options: StreamOptions, batcher: Batcher, stopper: Stopper) -> None:
    """Read entries into `batcher` until `stopper` is set, writing a batch when it is due (full, or `max_wait`
    after its first entry); entries are acknowledged after their batch committed, by this thread between its reads
    (`_Acknowledgements`). Redis outages are waited out with backoff; nothing is lost. While it reads, a heartbeat
    says so (`sensors.transports.heartbeat`, read by the health check)."""
    backoff = Backoff()
    heartbeat = Heartbeat("stream", detail={"stream": options.stream, "consumer": options.consumer})
    client = redis.Redis.from_url(
        redis_url,
        socket_connect_timeout=5,
        # A read waits at most 0.5 s for entries; a silent server is given up on (and reconnected to) well after.
        socket_timeout=15,
        socket_keepalive=True,
        health_check_interval=30,
        client_name=f"sensorhub-stream-{options.consumer}",  # how operators spot it in CLIENT LIST
    )
    reader = StreamReader(client, options)
    acknowledgements = _Acknowledgements(reader, stopper)
    batcher.on_flushed = acknowledgements.add  # in the writer thread that committed the batch
    try:
        while not stopper.stopped:
            try:
                reader.group_ensure()
                backoff.reset()
                logger.info(
                    "reading stream",
                    extra={"stream": options.stream, "group": options.group, "consumer": options.consumer},
                )
                while not stopper.stopped:
                    heartbeat.beat(client)
                    batcher.check()
                    acknowledgements.send()
                    # Wait for new entries no longer than the held batch may wait, and at most 0.5 s so that a stop
                    # request is seen soon (XREADGROUP's BLOCK 0 would wait forever).
                    wait_ms = min(500, max(1, round(batcher.time_left() * 1000)))
                    _hand_over(reader.read(block_ms=wait_ms), reader, batcher)
                    if batcher.due():
                        batcher.flush()
            except redis.ResponseError as exc:
                if not str(exc).startswith(_GONE):
                    raise
                # The stream or its group was deleted under us (DEL, XGROUP DESTROY; a blocked read is told
                # UNBLOCKED): make them again and go on.
                logger.warning("stream or consumer group gone; creating it again", extra={"error": str(exc)})
                batcher.flush()
                reader.restart()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                delay = backoff.next()
                logger.warning("redis unavailable, reconnecting", extra={"error": str(exc), "retry_in": delay})
                batcher.flush()  # what was read is still stored (and acknowledged once Redis is back)
                reader.restart()
                stopper.wait(delay)
    finally:
        heartbeat.stop()
        batcher.close()
        acknowledgements.send()  # the batches the writers committed last
        client.close()


class _Acknowledgements:
    """Entries whose batch committed, acknowledged by the reading thread: one `XACK` between two reads for every
    batch committed since, instead of one in each writer, whose time is better spent on the database (the writers
    are the consumer's narrowest part: docs/benchmarks.md, "Ingest")."""

    def __init__(self, reader: StreamReader, stopper: Stopper) -> None:
        self.reader = reader
        self.stopper = stopper
        self._ids: list[bytes] = []
        self._lock = threading.Lock()

    def add(self, ids: list[bytes]) -> None:
        with self._lock:
            self._ids.extend(ids)

    def send(self) -> None:
        with self._lock:
            ids, self._ids = self._ids, []
        if ids:
            _ack_until_done(self.reader, ids, self.stopper)


def _hand_over(entries: list[Entry], reader: StreamReader, batcher: Batcher) -> None:
    present = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
    if len(present) < len(entries):  # deleted from the stream while pending: nothing to store
        reader.ack([entry_id for entry_id, fields in entries if fields is None])
    # `entry_message`'s common case inlined, in comprehensions: this runs once per reading at the stream's full rate.
    messages = [
        fields[1] if type(fields) is list and len(fields) == 2 and fields[0] == b"data" else entry_message(fields)
        for _, fields in present
    ]
    batcher.extend(messages, [entry_id for entry_id, _ in present])


def _ack_until_done(reader: StreamReader, ids: list[bytes], stopper: Stopper) -> None:
    """Acknowledge committed entries, waiting out a Redis outage. Given up only at stop: the entries then stay
    pending and come back as duplicates, which are never stored twice."""
    backoff = Backoff()
    while True:
        try:
            reader.ack(ids)
            return
        except redis.ResponseError as exc:
            if not str(exc).startswith(_GONE):
                raise
            # Deleted with the stream or its group: there is nothing left to acknowledge.
            logger.warning("consumer group gone; nothing to acknowledge", extra={"entries": len(ids)})
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if stopper.stopped:
                logger.warning("redis unavailable at stop; entries stay pending", extra={"entries": len(ids)})
                return
            delay = backoff.next()
            logger.warning("redis unavailable, retrying the acknowledgement", extra={"error": str(exc)})
            stopper.wait(delay)
