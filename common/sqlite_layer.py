"""The embedded mode's channel layer: live messages shared by every process of one machine through a SQLite file.

Without Redis, `make run`'s processes (web, worker, detect, simulator) are separate processes, and Channels'
in-memory layer reaches only sockets of the process that sends: readings the simulator stored, detections the
`detect` worker made and job progress from the `worker` never reached a browser. This layer keeps the in-memory
layer's channels and groups (each process's sockets are its own) and carries *group* messages between processes:

- `group_send` appends the message to a table in `path` (one small SQLite file beside the database, in WAL mode),
  if some process has a member in that group (the `watched` table, refreshed by each process while it has
  members), else it does nothing, like the Redis layer's callers (`common.channels.groups_with_members`);
- each process that has group members runs one polling task on its event loop that reads the rows added since it
  started (every `poll_interval` seconds, 50 ms by default) and hands each to its own members of that group.

Limits, said in the README: one machine only (a file, not a network service); a message reaches sockets up to
`poll_interval` later than with Redis; messages are kept `expiry` seconds (then deleted) so a web process that
stalls longer misses them; sends to a single channel (`send`) stay in the process, as every channel name is
process-local. It is meant for the demo and development, never for production (use REDIS_URL).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

from channels.layers import InMemoryChannelLayer

logger = logging.getLogger("common.channels")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS message (id INTEGER PRIMARY KEY AUTOINCREMENT, grp TEXT NOT NULL, body TEXT NOT NULL,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS message_created ON message (created);
CREATE TABLE IF NOT EXISTS watched (grp TEXT NOT NULL, process TEXT NOT NULL, until REAL NOT NULL,
    PRIMARY KEY (grp, process));
"""


class SQLiteChannelLayer(InMemoryChannelLayer):
    """In-memory channels and groups per process; group messages between the processes of one machine through the
    SQLite file `path` (module docstring)."""

    WATCH_TTL = 15.0  # seconds a process's claim to watch a group lasts unless refreshed (every WATCH_TTL / 3)

    def __init__(self, path: str | os.PathLike[str], poll_interval: float = 0.05, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._process = f"{os.uname().nodename}:{os.getpid()}:{id(self)}"
        self._poller: asyncio.Task[None] | None = None
        self._cleaned_at = 0.0
        self._ready = False

    # --- the shared file ----------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # A connection per operation: cheap on a local file, and safe in any thread and after a fork.
        connection = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            self._ready = True
        return connection

    def watched_groups(self, groups: Iterable[str]) -> set[str]:
        """Those of `groups` in which some process of this machine has a member now."""
        names = list(dict.fromkeys(groups))
        if not names:
            return set()
        marks = ",".join("?" * len(names))
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT DISTINCT grp FROM watched WHERE until > ? AND grp IN ({marks})",  # noqa: S608  (only "?" marks)
                [time.time(), *names],
            ).fetchall()
        return {row[0] for row in rows}

    def _watch(self, groups: Iterable[str]) -> None:
        until = time.time() + self.WATCH_TTL
        with closing(self._connect()) as db:
            db.execute("DELETE FROM watched WHERE process = ?", [self._process])
            db.executemany(
                "INSERT OR REPLACE INTO watched (grp, process, until) VALUES (?, ?, ?)",
                [(group, self._process, until) for group in groups],
            )

    def _append(self, group: str, body: str) -> None:
        now = time.time()
        with closing(self._connect()) as db:
            db.execute("INSERT INTO message (grp, body, created) VALUES (?, ?, ?)", [group, body, now])
            if now - self._cleaned_at > 1.0:  # old messages go, at most once a second per process
                self._cleaned_at = now
                db.execute("DELETE FROM message WHERE created < ?", [now - self.expiry])
                db.execute("DELETE FROM watched WHERE until < ?", [now])

    def _read_after(self, cursor: int | None) -> tuple[int, list[tuple[int, str, str]]]:
        with closing(self._connect()) as db:
            if cursor is None:
                return db.execute("SELECT coalesce(max(id), 0) FROM message").fetchone()[0], []
            rows = db.execute(
                "SELECT id, grp, body FROM message WHERE id > ? ORDER BY id LIMIT 1000", [cursor]
            ).fetchall()
        return (rows[-1][0] if rows else cursor), rows

    # --- the channel layer API -----------------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        self._poll_ensure()
        self._watch(self.groups)

    async def group_discard(self, group: str, channel: str) -> None:
        await super().group_discard(group, channel)
        self._watch(self.groups)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Hand `message` to every member of `group` in every process of this machine (including this one, through
        the file too, so that every process sees one order)."""
        if not isinstance(message, dict):
            raise TypeError("message is not a dict")
        self.require_valid_group_name(group)
        self._append(group, json.dumps(message))

    async def flush(self) -> None:
        await super().flush()
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        self._watch(())

    # --- the receiving side --------------------------------------------------------------------------------------

    def _poll_ensure(self) -> None:
        """One polling task per process, on the loop of the sockets (a new loop, e.g. in tests, gets a new task)."""
        loop = asyncio.get_running_loop()
        if self._poller is not None and not self._poller.done() and self._poller.get_loop() is loop:
            return
        cursor, _ = self._read_after(None)
        self._poller = loop.create_task(self._poll(cursor), name="sqlite-channel-layer-poll")

    async def _poll(self, cursor: int) -> None:
        watch_at = time.monotonic() + self.WATCH_TTL / 3
        while True:
            rows: list[tuple[int, str, str]] = []
            try:
                cursor, rows = self._read_after(cursor)
                for _, group, body in rows:
                    if group in self.groups:
                        await InMemoryChannelLayer.group_send(self, group, json.loads(body))
                if time.monotonic() >= watch_at:
                    watch_at = time.monotonic() + self.WATCH_TTL / 3
                    self._watch(self.groups)
            except sqlite3.Error:  # a locked or briefly unreadable file: the next round reads again
                logger.warning("live messages could not be read from %s", self.path, exc_info=True)
            if len(rows) < 1000:  # a full page means more wait: read on at once
                await asyncio.sleep(self.poll_interval)
