"""The live-stream pattern every WebSocket of Sensorhub shares: authenticate, join a group, send recent history,
then forward the group's events, with no gap and no duplicate (docs/api.md, "Live streams").

A subclass (`sensors.consumers`, `detection.consumers`) says who may watch, and names its target, group, history,
items field and live event type; the order of things, the close codes and the message shapes are this module's:

    {"type": "history", <envelope>, "<items>": [...]}   once, first (oldest item first)
    {"type": "<items>", <envelope>, "<items>": [...]}   then one per broadcast
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer

logger = logging.getLogger(__name__)

# Close codes (sent after accepting, so that browsers see them; the same code is first sent as an error message).
BAD_REQUEST = 4400
UNAUTHENTICATED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
# Where an event keeps its JSON text, by consumer class and envelope, for the other sockets of the process.
ENCODED = "__encoded__"


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
    head: dict[str, Any] = {}  # the envelope, set at connect
    sent_keys: frozenset | set = frozenset()
    refresher: asyncio.Task | None = None

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

    # --- the pattern ---------------------------------------------------------------------------------------------

    async def connect(self) -> None:
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
        self.head = self.envelope(target)
        await self.channel_layer.group_add(self.group, self.channel_name)  # before the history: no gap
        await self.accept()
        history = await self.history(target, limit)
        self.sent_keys = {self.item_key(item) for item in history}
        await self.send_json({"type": "history", **self.head, self.items: history})
        self.refresher = asyncio.create_task(self.keep_membership(self.group))

    async def refuse(self, code: int, detail: str) -> None:
        # Closing before accepting would reach the client as a bare HTTP 403 without the code.
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
        else:
            await super().dispatch(message)

    async def forward(self, event: dict) -> None:
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

    async def keep_membership(self, group: str) -> None:
        """Re-join the group every half `group_expiry`: channels-redis forgets members older than that (a day by
        default), and a dashboard left open longer would go silent."""
        interval = self.membership_refresh_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except Exception:  # Redis away for a moment: try again at the next interval
                logger.warning("could not renew live group membership", extra={"group": group}, exc_info=True)

    def membership_refresh_seconds(self) -> float:
        return getattr(self.channel_layer, "group_expiry", 86400) / 2

    async def disconnect(self, code: int) -> None:
        if self.refresher is not None:
            self.refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.refresher
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
