"""Ingestion: every reading, whichever transport brought it, is decoded, validated and stored here.

Modules by responsibility: `decoding` (bytes, JSON, CSV rows and the one timestamp parser), `validation`
(messages → `ReadingIn`s or field errors), `storage` (the COPY / bulk writes and latest values), `rejections`
(dead-letter `RejectedMessage` rows), `hooks` (what runs after commit) and `services` (`readings_ingest`, the
use case that joins them). See docs/ingestion.md.
"""

from sensors.ingest.decoding import (
    ReadingInvalid,
    TimestampInvalid,
    csv_rows,
    errors_reason,
    message_decode,
    naive_timezone,
    size_check,
    timestamp_parse,
)
from sensors.ingest.hooks import StoredReading
from sensors.ingest.rejections import rejection_payload, rejections_record
from sensors.ingest.services import readings_ingest, rejected_message_reprocess
from sensors.ingest.storage import IngestResult, readings_store
from sensors.ingest.validation import ReadingIn, ValidatedBatch, reading_parse, readings_validate

__all__ = [
    "IngestResult",
    "ReadingIn",
    "ReadingInvalid",
    "StoredReading",
    "TimestampInvalid",
    "ValidatedBatch",
    "csv_rows",
    "errors_reason",
    "message_decode",
    "naive_timezone",
    "reading_parse",
    "readings_ingest",
    "readings_store",
    "readings_validate",
    "rejected_message_reprocess",
    "rejection_payload",
    "rejections_record",
    "size_check",
    "timestamp_parse",
]
