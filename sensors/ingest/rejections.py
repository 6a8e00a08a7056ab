"""Dead letters: messages ingestion refused, kept as `RejectedMessage` rows (payload bounded) with the reason, so
staff can see what went wrong and re-process them once it is fixed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from sensors.ingest.decoding import errors_reason
from sensors.models import RejectedMessage


@dataclass(slots=True)
class Rejection:
    """One refused message of a call: its index in the call's messages, the message and its field errors."""

    index: int
    message: Any
    errors: dict[str, list[str]]
    sensor_key: str = ""


def guess_key(message: Any) -> str:
    """The sensor a refused message names, when it is a mapping that names one (for the rejection's row)."""
    if isinstance(message, Mapping):
        key = message.get("sensor")
        return key[:100] if isinstance(key, str) else ""
    return ""


def _payload_text(message: Any) -> str:
    if isinstance(message, bytes | bytearray | memoryview):
        return bytes(message[: RejectedMessage.PAYLOAD_LIMIT * 4]).decode("utf-8", errors="replace")
    if isinstance(message, str):
        return message
    try:
        return json.dumps(message, default=str)
    except (TypeError, ValueError):
        return repr(message)


def rejections_record(*, transport: str, rejections: list[tuple[Any, str, str]]) -> None:
    """Keep messages refused before they reached `readings_ingest` (e.g. a CSV row with the wrong number of
    columns) as `RejectedMessage`s: (payload, reason, sensor key) each."""
    rejections_store(
        [Rejection(i, payload, {"row": [reason]}, key) for i, (payload, reason, key) in enumerate(rejections)],
        transport=transport,
        received_at=timezone.now(),
    )


def rejections_store(rejections: list[Rejection], *, transport: str, received_at: datetime) -> None:
    """One bulk insert of the rejections of a call (payloads cut at `PAYLOAD_LIMIT`, NUL characters replaced)."""
    objects = []
    for rejection in rejections:
        text = _payload_text(rejection.message)
        truncated = len(text) > RejectedMessage.PAYLOAD_LIMIT
        reason = errors_reason(rejection.errors)
        objects.append(
            RejectedMessage(
                transport=transport,
                payload=text[: RejectedMessage.PAYLOAD_LIMIT].replace("\x00", "\ufffd"),
                payload_truncated=truncated,
                reason=reason,
                sensor_key=rejection.sensor_key[:100].replace("\x00", "\ufffd"),
                received_at=received_at,
            )
        )
    RejectedMessage.objects.bulk_create(objects)
