"""WebSocket consumers of the sensors app: a sensor's live readings on the pattern of `common.live.LiveConsumer`,
and who may watch the live streams of sensors (`ReadersConsumer`, detection's streams too).

{"type": "history", "sensor": "<key>", "readings": [{"timestamp": "...", "value": 1.0}, ...]}   once, first
{"type": "readings", "sensor": "<key>", "readings": [...]}   then one per broadcast (one per ingest batch)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async

from accounts.broadcast import user_group
from accounts.websocket import DEVICE_SCHEME, authorization, reader_refusal, scope_reauthenticate
from common.live import FORBIDDEN, LiveConsumer
from sensors import selectors
from sensors.broadcast import READINGS_EVENT, reading_payload, readings_group
from sensors.services.device_keys import device_key_authenticate

if TYPE_CHECKING:
    from sensors.models import Sensor


class ReadersConsumer(LiveConsumer):
    """A live stream for readers: viewers, operators and staff may watch; a device key is refused (it writes
    readings and reads nothing), a wrong one is no credentials. The socket listens to its user's group, where
    accounts announces changes of rights, and closes when they are lost (`common.live.LiveConsumer.recheck`)."""

    def watcher_groups(self) -> list[str]:
        user = self.scope.get("user")
        return [user_group(user.pk)] if user is not None and user.is_authenticated else []

    async def reauthenticate(self) -> None:
        self.scope = await scope_reauthenticate(self.scope)

    async def refusal(self) -> tuple[int, str] | None:
        header = authorization(self.scope)
        if header is not None and header[0] == DEVICE_SCHEME:
            key = await database_sync_to_async(device_key_authenticate)(raw=header[1])
            if key is not None:
                return FORBIDDEN, "Device keys only write readings."
        return await reader_refusal(self.scope)


class SensorReadingsConsumer(ReadersConsumer):
    """`ws/sensors/<key>/readings/`: a sensor's last readings, then each batch the ingestion service stores."""

    live_event = READINGS_EVENT
    items = "readings"
    not_found = "No such sensor."

    async def target(self):
        return await database_sync_to_async(selectors.sensor_get)(key=self.scope["url_route"]["kwargs"]["key"])

    def group_name(self, target) -> str:
        return readings_group(target.pk)

    def envelope(self, target: Sensor) -> dict[str, Any]:
        return {"sensor": target.key}

    async def history(self, target: Sensor, limit: int) -> Sequence[Mapping[str, Any]]:
        rows = await database_sync_to_async(selectors.readings_recent)(sensor=target, limit=limit)
        return [reading_payload(timestamp, value) for timestamp, value in rows]
