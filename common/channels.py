"""The channel layer from synchronous code, for every app's broadcasts (`<app>/broadcast.py`).

Broadcasts go only to groups someone watches (one membership check for all the groups of a batch), and are sent
from one long-lived event loop per process. channels-redis drops a group message silently for a channel that is
full and only notes it at INFO; `OverCapacityWarning` turns that note into a WARNING naming the group (sizing:
docs/api.md, "Live streams").
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, cast

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer

from common.sqlite_layer import SQLiteChannelLayer


async def group_has_members(layer: BaseChannelLayer, group: str) -> bool:
    """Whether any live channel is in `group` (unknown layer types: assume so)."""
    return (await groups_with_members(layer, [group]))[group]


async def groups_with_members(layer: BaseChannelLayer, groups: list[str]) -> dict[str, bool]:
    """Whether any live channel is in each of `groups` (unknown layer types: assume so). With Redis one pipelined
    round trip per server, not one per group. The embedded mode's layer knows the groups of every process."""
    if isinstance(layer, SQLiteChannelLayer):
        watched = layer.watched_groups(groups)
        return {group: group in watched for group in groups}
    if isinstance(layer, InMemoryChannelLayer):
        return {group: bool(layer.groups.get(group)) for group in groups}
    if not isinstance(layer, RedisChannelLayer):
        return dict.fromkeys(groups, True)
    # channels-redis keeps a group as a sorted set of channel names scored by the time they joined, and ignores
    # members older than `group_expiry` (channels_redis.core.RedisChannelLayer.group_send).
    joined_after = int(time.time()) - layer.group_expiry
    by_server: dict[int, list[str]] = {}
    for group in dict.fromkeys(groups):
        by_server.setdefault(layer.consistent_hash(group), []).append(group)
    found: dict[str, bool] = {}
    for index, names in by_server.items():
        pipeline = layer.connection(index).pipeline(transaction=False)
        for group in names:
            pipeline.zcount(layer._group_key(group), joined_after, "+inf")
        counts = await pipeline.execute()
        found.update({group: count > 0 for group, count in zip(names, counts, strict=True)})
    return found


def group_messages_send(messages: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Send each (group, message) to its group if anyone watches it, in order (the parts of one group arrive in
    order). Nothing without a channel layer."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    layer_run(_send_watched, layer, messages)


async def _send_watched(layer: BaseChannelLayer, messages: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    watched = await groups_with_members(layer, [group for group, _ in messages])
    for group, message in messages:
        if watched[group]:
            await layer.group_send(group, layer_message(message))


def layer_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A typed channel message (a TypedDict of `<app>/broadcast.py`) as the plain dict the layer's API is typed
    with; it is one already, so nothing is copied."""
    return cast("dict[str, Any]", message)


class OverCapacityWarning(logging.Filter):
    """A filter on the `channels_redis.core` logger: its "N of M channels over capacity in group G" record (INFO:
    live messages were dropped) becomes a WARNING with `event`, `group` and `channels_over_capacity` fields.

    N counts Redis channel keys, one per receiving server process (every socket of a process shares its key), so
    one over-capacity key means every socket of that process in the group missed the message.
    """

    MESSAGE = "%s of %s channels over capacity in group %s"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self.MESSAGE and isinstance(record.args, tuple) and len(record.args) == 3:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            record.msg = "live messages dropped: " + self.MESSAGE
            record.event = "live_messages_dropped"
            record.channels_over_capacity, _, record.group = record.args
        return True


def layer_run(function: Callable[..., Coroutine[Any, Any, None]], layer: BaseChannelLayer, *args: Any) -> None:
    """Run a channel-layer coroutine from synchronous code.

    channels-redis keeps its connections per event loop, and `async_to_sync` from a plain thread makes a new loop
    (so a new Redis connection) at every call: several milliseconds per batch. One long-lived loop per process
    keeps the connections. The in-memory layers (embedded mode's is one) are not thread-safe: there `async_to_sync`
    runs the send on the web server's own loop (in a web process; elsewhere on a loop of its own).
    """
    if isinstance(layer, InMemoryChannelLayer):
        async_to_sync(function)(layer, *args)
        return
    asyncio.run_coroutine_threadsafe(function(layer, *args), _background_loop()).result(timeout=30)


_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():  # a forked worker process starts its own
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="channel-layer-loop", daemon=True).start()
        return _loop
