"""Messages and a shorthand call shared by the ingestion tests."""

import json
from datetime import UTC, datetime

from sensors.ingest import IngestResult, readings_ingest
from sensors.models import Transport

NOW = datetime(2024, 12, 1, 12, 30, tzinfo=UTC)


def msg(sensor="temperature", value=14, timestamp="2024-12-01 12:00:00", **extra) -> bytes:
    return json.dumps({"sensor": sensor, "value": value, "timestamp": timestamp, **extra}).encode()


def ingest(messages, **kwargs) -> IngestResult:
    kwargs.setdefault("transport", Transport.PUBSUB)
    kwargs.setdefault("received_at", NOW)
    return readings_ingest(messages=messages, **kwargs)
