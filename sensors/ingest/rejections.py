"""Dead letters: messages ingestion refused, kept as `RejectedMessage` rows (payload bounded) with the reason, so
staff can see what went wrong and re-process them once it is fixed.

Whatever a message holds, keeping it never fails: its payload, reason and sensor key are stored with each NUL and
surrogate escaped (`common.text`), a payload JSON cannot write is kept in bounded Python notation."""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from common.text import text_storable
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


class _BoundedRepr(reprlib.Repr):
    """The last resort for a payload JSON cannot write (nested past the recursion limit, an integer too long to
    print): Python's notation, its depth and lengths bounded, never an exception."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 20
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = 100
        self.maxstring = self.maxother = self.maxlong = RejectedMessage.PAYLOAD_LIMIT

    def repr_int(self, x: int, level: int) -> str:
        try:
            return super().repr_int(x, level)
        except ValueError:  # more digits than int-to-text conversion allows
            return f"<an integer of {x.bit_length()} bits>"


_bounded_repr = _BoundedRepr()


def _payload_text(message: Any) -> str:
    if isinstance(message, bytes | bytearray | memoryview):
        # The first bytes only: a character takes at most four.
        return bytes(message[: RejectedMessage.PAYLOAD_LIMIT * 4]).decode("utf-8", errors="replace")
    if isinstance(message, str):
        return message
    try:
        return json.dumps(message, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return _bounded_repr.repr(message)


def rejection_payload(message: Any) -> tuple[str, bool]:
    """What a `RejectedMessage` keeps of a message, and whether it was cut: its text (bytes decoded as UTF-8,
    invalid sequences as U+FFFD; a mapping as JSON), each NUL and surrogate written as its `\\uXXXX` escape
    (`common.text.text_storable`), cut at `PAYLOAD_LIMIT` characters."""
    limit = RejectedMessage.PAYLOAD_LIMIT
    text = _payload_text(message)
    escaped = text_storable(text[:limit])
    return escaped[:limit], len(text) > limit or len(escaped) > limit


def rejections_record(*, transport: str, rejections: list[tuple[Any, str, str]]) -> None:
    """Keep messages refused before they reached `readings_ingest` (e.g. a CSV row with the wrong number of
    columns) as `RejectedMessage`s: (payload, reason, sensor key) each."""
    rejections_store(
        [Rejection(i, payload, {"row": [reason]}, key) for i, (payload, reason, key) in enumerate(rejections)],
        transport=transport,
        received_at=timezone.now(),
    )


def rejections_store(rejections: list[Rejection], *, transport: str, received_at: datetime) -> None:
    """One bulk insert of the rejections of a call. Every text stored is storable (`common.text.text_storable`:
    NUL and surrogates escaped), payloads cut at `PAYLOAD_LIMIT` (`rejection_payload`)."""
    objects = []
    for rejection in rejections:
        payload, truncated = rejection_payload(rejection.message)
        objects.append(
            RejectedMessage(
                transport=transport,
                payload=payload,
                payload_truncated=truncated,
                reason=text_storable(errors_reason(rejection.errors)),
                sensor_key=text_storable(rejection.sensor_key[:100])[:100],
                received_at=received_at,
            )
        )
    RejectedMessage.objects.bulk_create(objects)
