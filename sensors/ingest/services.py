"""The ingestion service: the one path every reading takes, whichever way it arrives.

Every transport (the Redis stream, pub/sub, MQTT, REST, the CSV import), the HTTP sources and the simulator call
`readings_ingest` (or its two halves, `readings_validate` and `readings_store`). It guarantees:

- validation (`validation`): a known (or, where `SENSORS_AUTO_REGISTER` allows, a new) active sensor; a finite
  float value; an ISO 8601 timestamp, naive ones read in `SENSORS_NAIVE_TIMEZONE`, none more than
  `SENSORS_MAX_FUTURE_SECONDS` ahead of the receive time;
- one batch insert per call that ignores readings already stored (same sensor and timestamp) and counts them
  (`storage`);
- each sensor's latest value is the reading with the greatest timestamp, not the last to arrive;
- after commit, the stored readings go to the hooks in `SENSORS_INGEST_HOOKS` (live broadcast, detection; `hooks`);
- bad input becomes a `RejectedMessage` with its reason (`rejections`), or, with `atomic=True` (REST), an
  `ApplicationError` naming each bad index and field with nothing of the call stored. It never stops the caller
  otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction

from common.exceptions import ApplicationError
from sensors.ingest.decoding import errors_reason
from sensors.ingest.storage import IngestResult, readings_store
from sensors.ingest.validation import readings_validate
from sensors.models import DeviceKey, RejectedMessage, Transport


def readings_ingest(
    *,
    messages: Sequence[Any],
    transport: str,
    sensor_key: str | None = None,
    text_values: bool = False,
    atomic: bool = False,
    decoded: bool = False,
    device_key: DeviceKey | None = None,
    received_at: datetime | None = None,
) -> IngestResult:
    """Validate and store a batch of messages (raw bytes/str JSON, or decoded mappings) that came by `transport`.

    With `atomic=True` any invalid message raises `ApplicationError` whose `fields` map each bad index to its
    field errors, and nothing is stored; otherwise each bad message is kept as a `RejectedMessage`. With
    `decoded=True` every message must already be a mapping (REST items), never text to parse. A
    `device_key` limits the batch to the sensors that key may write and never registers new sensors.
    """
    batch = readings_validate(
        messages=messages, sensor_key=sensor_key, text_values=text_values, decoded=decoded, received_at=received_at
    )
    return readings_store(batch=batch, transport=transport, atomic=atomic, device_key=device_key)


def rejected_message_reprocess(*, message: RejectedMessage) -> IngestResult:
    """Run a rejected message through ingestion again (after a fix, e.g. its sensor was created).

    On success the rejected row is deleted; if it fails again its reason is updated and it stays.
    """
    with transaction.atomic():
        try:
            result = readings_ingest(
                messages=[message.payload], transport=Transport.ADMIN, atomic=True, text_values=True
            )
        except ApplicationError as exc:
            errors = next(iter(exc.fields.values()), {}) if exc.fields else {"payload": [exc.detail]}
            message.reason = errors_reason(errors)
            message.save(update_fields=["reason"])
            return IngestResult(received=1, rejected=1)
        message.delete()
    return result
