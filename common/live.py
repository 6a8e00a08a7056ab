"""The live-stream pattern every WebSocket of Sensorhub shares: authenticate, join a group, send recent history,
then forward the group's events, with no gap and no duplicate (docs/api.md, "Live streams").

A subclass (`sensors.consumers`, `detection.consumers`) says who may watch, and names its target, group, history,
items field and live event type; the order of things, the close codes and the message shapes are this module's:

    {"type": "history", <envelope>, "<items>": [...]}   once, first (oldest item first)
    {"type": "<items>", <envelope>, "<items>": [...]}   then one per broadcast

A socket keeps its stream only while its caller keeps the right to it: the consumer checks again (`recheck`) when
a `live.recheck` message reaches one of its `watcher_groups` (sent when tokens, roles or accounts change:
`accounts.broadcast`), and every LIVE_RECHECK_SECONDS whatever happened; a refusal then closes the socket with
its code, after which nothing more is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypedDict
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Close codes (sent after accepting, so that browsers see them; the same code is first sent as an error message).
BAD_REQUEST = 4400
UNAUTHENTICATED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
UNAVAILABLE = 4503  # the channel layer (Redis) cannot be reached: reconnect later
# Errors of an unreachable channel layer: a refusal with UNAVAILABLE, never an unhandled error (an HTTP 500).
LAYER_ERRORS = (RedisError, OSError)
# Where an event keeps its JSON text, by consumer class and envelope, for the other sockets of the process.
ENCODED = "__encoded__"
# The channel message that makes the sockets of a watcher group check their caller's rights again.
RECHECK_EVENT = "live.recheck"


class RecheckMessage(TypedDict):
    type: str  # RECHECK_EVENT


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """History first, then every live item of one group, with no gap and no duplicate.

    Gap-free: the consumer joins the group *before* it reads the history, so an item committed after the read is
    broadcast to it; an item committed before the read is in the history. Duplicate-free: an item can be both (it
    was committed after the join and before the read): live items whose key was in the history are dropped.
    Ordered: Channels dispatches one message at a time per consumer, so group events that arrive while `connect`
    runs wait in the channel layer's receive buffer until the history has been sent.
    """

    live_event: ClassVar[str]  # the channel-layer event type forwarded (`<app>.<event>`)
    items: ClassVar[str]  # the list field of messages, and the `type` of live messages
    history_default: ClassVar[int] = 100
    history_max: ClassVar[int] = 5000
    not_found: ClassVar[str] = "Not found."

    group: str | None = None
    extras: tuple[str, ...] = ()  # more watched groups (`extra_groups`)
    watchers: tuple[str, ...] = ()  # the groups announcing changes of the caller's rights
    head: dict[str, Any] = {}  # the envelope, set at connect
    sent_keys: frozenset | set = frozenset()
    refresher: asyncio.Task | None = None
    rechecker: asyncio.Task | None = None
    accepted: bool = False
    closing: bool = False
    refused: bool = False  # closed for lost rights or a lost channel layer: nothing more is sent
    _channel_receive: Any = None

    # --- what a subclass provides --------------------------------------------------------------------------------

    async def refusal(self) -> tuple[int, str] | None:
        """Why the caller (`self.scope`) may not watch, as (close code, detail), or None when it may."""
        raise NotImplementedError

    async def target(self) -> Any | None:
        """The watched object named by the URL, or None (the socket closes with 4404)."""
        raise NotImplementedError

    def group_name(self, target: Any) -> str:
        raise NotImplementedError

    async def history(self, target: Any, limit: int) -> Sequence[Mapping[str, Any]]:
        """The last `limit` items, oldest first, in the shape of live items."""
        raise NotImplementedError

    def envelope(self, target: Any) -> dict[str, Any]:
        """The fields every message carries besides `type` and the items (e.g. `{"sensor": key}`)."""
        return {}

    def item_key(self, item: Mapping[str, Any]) -> Any:
        """What identifies an item, to drop live items the history already held."""
        return item["timestamp"]

    def extra_groups(self, target: Any) -> Sequence[str]:
        """More groups whose live events the socket receives besides `group_name`'s (a summary socket watching
        many sensors joins each one's group; it then handles their event types itself, in `dispatch`)."""
        return ()

    def watcher_groups(self) -> Sequence[str]:
        """Groups where a `live.recheck` message announces a change of the caller's rights (e.g. its user's)."""
        return ()

    async def reauthenticate(self) -> None:
        """Load the caller's credentials again into `self.scope` (before `refusal` is asked again)."""

    # --- the pattern ---------------------------------------------------------------------------------------------

    @property
    def channel_receive(self) -> Any:
        return self._channel_receive

    @channel_receive.setter
    def channel_receive(self, receive: Any) -> None:
        # Channels reads the channel layer in a loop beside the client's messages; an unreachable Redis would end
        # that loop with an unhandled error (HTTP 500 before the handshake, 1011 after). It becomes one message
        # that closes the socket with UNAVAILABLE, and the loop then waits for the socket's end.
        async def guarded() -> dict:
            if self.refused:
                await asyncio.Event().wait()
            try:
                return await receive()
            except LAYER_ERRORS:
                logger.warning("live socket lost the channel layer", exc_info=True)
                self.refused = True
                return {"type": "live.unavailable"}

        self._channel_receive = guarded

    async def live_unavailable(self, message: dict) -> None:
        await self.unavailable()

    async def unavailable(self) -> None:
        self.refused = True
        await self.refuse(UNAVAILABLE, "Live streams are unavailable for a moment; connect again later.")

    async def connect(self) -> None:
        try:
            await self.start()
        except LAYER_ERRORS:
            logger.warning("live socket could not join its groups", exc_info=True)
            await self.unavailable()

    async def start(self) -> None:
        # Joined before the rights are checked: a change right after the check is announced to this socket.
        self.watchers = tuple(self.watcher_groups())
        for watcher in self.watchers:
            await self.channel_layer.group_add(watcher, self.channel_name)
        refusal = await self.refusal()
        if refusal is not None:
            await self.refuse(*refusal)
            return
        try:
            limit = self.history_limit()
        except ValueError:
            await self.refuse(BAD_REQUEST, f"history must be an integer from 0 to {self.history_max}.")
            return
        target = await self.target()
        if target is None:
            await self.refuse(NOT_FOUND, self.not_found)
            return
        self.group = self.group_name(target)
        self.extras = tuple(self.extra_groups(target))
        self.head = self.envelope(target)
        for group in (self.group, *self.extras):
            await self.channel_layer.group_add(group, self.channel_name)  # before the history: no gap
        self.accepted = True
        await self.accept()
        history = await self.history(target, limit)
        self.sent_keys = {self.item_key(item) for item in history}
        await self.send_json({"type": "history", **self.head, self.items: history})
        self.refresher = asyncio.create_task(self.keep_membership((self.group, *self.extras, *self.watchers)))
        self.rechecker = asyncio.create_task(self.recheck_periodically())

    async def refuse(self, code: int, detail: str) -> None:
        """Send the error message with its code, then close with it (once, whatever asks for it later)."""
        if self.closing:
            return
        self.closing = True
        await self.leave_groups()
        # Closing before accepting would reach the client as a bare HTTP 403 without the code.
        if not self.accepted:
            self.accepted = True
            await self.accept()
        await self.send_json({"type": "error", "code": code, "detail": detail})
        await self.close(code=code)

    def history_limit(self) -> int:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("history")
        if not values:
            return self.history_default
        limit = int(values[-1])
        if limit < 0:
            raise ValueError(limit)
        return min(limit, self.history_max)

    async def dispatch(self, message: dict) -> None:
        if message["type"] == self.live_event:
            # Live events touch no database: skip Channels' per-message hop to the database thread.
            await self.forward(message)
        elif message["type"] == RECHECK_EVENT:
            await self.recheck()
        else:
            await super().dispatch(message)

    async def recheck(self) -> None:
        """Close the socket (4401 or 4403, as at connect) if its caller lost the right to watch. Channels handles
        one message at a time per consumer, so no live item is forwarded between the check and the close."""
        if self.refused or self.group is None:
            return
        await self.reauthenticate()
        refusal = await self.refusal()
        if refusal is None:
            return
        self.refused = True
        await self.refuse(*refusal)

    async def recheck_periodically(self) -> None:
        """The safety net for changes nobody announced (a token expiring, a row edited outside the services)."""
        while not self.refused:
            await asyncio.sleep(settings.LIVE_RECHECK_SECONDS)
            try:
                await self.recheck()
            except Exception:  # the database away for a moment: check again at the next interval
                logger.warning("could not recheck a live socket's rights", exc_info=True)

    async def forward(self, event: dict) -> None:
        if self.refused:
            return
        items = event[self.items]
        if self.sent_keys:
            kept = [item for item in items if self.item_key(item) not in self.sent_keys]
            if len(kept) < len(items):
                if kept:
                    await self.send_json({"type": self.items, **self.head, self.items: kept})
                return
        # channels-redis hands one event object to every socket of this process in the group, and they all send
        # the same text: encode it once (JSON encoding was daphne's largest cost with 50 sockets on one sensor).
        encoded = event.setdefault(ENCODED, {})
        shape = (type(self), *self.head.items())  # the same text only for the same message shape and envelope
        text = encoded.get(shape)
        if text is None:
            text = encoded[shape] = await self.encode_json({"type": self.items, **self.head, self.items: items})
        await self.send(text_data=text)

    async def keep_membership(self, groups: Sequence[str]) -> None:
        """Re-join the groups every half `group_expiry`: channels-redis forgets members older than that (a day by
        default), and a dashboard left open longer would go silent."""
        interval = self.membership_refresh_seconds()
        while True:
            await asyncio.sleep(interval)
            for group in groups:
                try:
                    await self.channel_layer.group_add(group, self.channel_name)
                except Exception:  # Redis away for a moment: try again at the next interval
                    logger.warning("could not renew live group membership", extra={"group": group}, exc_info=True)

    def membership_refresh_seconds(self) -> float:
        return getattr(self.channel_layer, "group_expiry", 86400) / 2

    async def leave_groups(self) -> None:
        for task in (self.refresher, self.rechecker):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.refresher = self.rechecker = None
        for group in (self.group, *self.extras, *self.watchers):
            if group is not None:
                # Redis away: channels-redis forgets the member at `group_expiry` anyway.
                with contextlib.suppress(*LAYER_ERRORS):
                    await self.channel_layer.group_discard(group, self.channel_name)
        self.group, self.extras, self.watchers = None, (), ()

    async def disconnect(self, code: int) -> None:
        await self.leave_groups()
