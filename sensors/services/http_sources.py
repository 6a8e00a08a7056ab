"""HTTP sources (shown to users as "external sources"): fetch a sensor's HTTP JSON or CSV endpoint and ingest the
records that are new.

Guarantees:
- Incremental: only records newer than the sensor's latest stored reading when the fetch begins (the cut-off,
  `SourceFetch.since`) go to ingestion; `since_param`, when set, sends the cut-off so the endpoint can leave the
  older ones out. Older records are counted as skipped.
- Every reading goes through the ingestion service (transport `Transport.HTTP_SOURCE`): validated by its
  `reading_parse` (timestamps by its one parser, `timestamp_parse`), stored by its `readings_store` (duplicates
  ignored and counted, latest value by greatest timestamp, live broadcast).
- Every attempt leaves a `SourceFetch` row and updates the source's state (`last_error`, `consecutive_failures`,
  ...), whatever happened; a failed fetch stores nothing.
- An answer that holds records of which not one can be read (wrong field names, a timestamp format we cannot
  read, HTML instead of data) fails the fetch as a mapping problem and keeps nothing; otherwise each bad new
  record is kept once as a `RejectedMessage`, however many later fetches return it again.
- One fetch per source at a time: a claim on the source row (released at the end, or taken over after
  `CLAIM_TTL` if a worker died) makes a second attempt meanwhile raise `SourceBusyError`.
- No retry inside a fetch or a task: the next scheduled run is the retry. Fetches are incremental, so nothing is
  lost while a source is down as long as it still serves the older records.
- `sources_fetch_due`: one source's failure, even an unexpected error, never stops the others.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework import status

from common.exceptions import ApplicationError
from common.jobs import ProgressCallback, no_progress
from common.text import text_storable
from sensors.ingest import (
    IngestResult,
    ReadingIn,
    ReadingInvalid,
    TimestampInvalid,
    ValidatedBatch,
    csv_rows,
    errors_reason,
    naive_timezone,
    reading_parse,
    readings_store,
    rejection_payload,
    rejections_record,
    size_check,
    timestamp_parse,
)
from sensors.models import HttpSource, RejectedMessage, Sensor, SourceFetch, Transport
from sensors.selectors import sources_due

logger = logging.getLogger(__name__)

USER_AGENT = "Sensorhub-sources/1.0"
CLAIM_TTL = timedelta(minutes=15)  # far above the longest fetch (timeout ≤ 120 s plus ingestion)
INGEST_CHUNK = 10_000  # readings per `readings_ingest` call (each its own transaction)
ERROR_LIMIT = 2000
ACCEPT: dict[str, str] = {HttpSource.Format.JSON: "application/json", HttpSource.Format.CSV: "text/csv"}


class SourceError(Exception):
    """The fetch failed: unreachable, HTTP error, too large, not the configured format, or an unusable mapping."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class SourceBusyError(ApplicationError):
    """Another fetch of this source is running."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"The source of {key!r} is being fetched already.", code="source_busy", status_code=status.HTTP_409_CONFLICT
        )


@dataclass
class _Record:
    """One record of an answer: what a rejection would keep (`payload`), the mapped raw values, or its problems."""

    payload: str
    timestamp: Any = None
    value: Any = None
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SourcesRun:
    """What `sources_fetch_due` did: one fetch per source, plus the sources it could not fetch at all."""

    fetches: list[SourceFetch] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # sensor keys whose source another fetch held
    crashed: list[str] = field(default_factory=list)  # sensor keys whose fetch raised an unexpected error

    @property
    def failed(self) -> list[SourceFetch]:
        return [fetch for fetch in self.fetches if fetch.status == SourceFetch.Status.FAILED]

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": len(self.fetches) + len(self.busy),
            "failed": len(self.failed),
            "busy": len(self.busy),
            "stored": sum(fetch.stored for fetch in self.fetches),
            "rejected": sum(fetch.rejected for fetch in self.fetches),
        }


# --- writes of the configuration --------------------------------------------------------------------------------


@transaction.atomic
def source_save(*, source: HttpSource) -> HttpSource:
    """Create or update a source after full validation (URL, mapping, headers, one source per sensor)."""
    source.full_clean()
    source.save()
    return source


# --- one fetch --------------------------------------------------------------------------------------------------


def source_fetch(*, source: HttpSource, session: requests.Session | None = None) -> SourceFetch:
    """Fetch one source now (enabled or not) and ingest its new records; returns the `SourceFetch` row.

    Expected failures (network, HTTP, size, format, mapping, an inactive sensor) are recorded and returned as a
    failed fetch; an unexpected error is recorded too, then raised. Raises `SourceBusyError` when another fetch
    of this source is running.
    """
    started = timezone.now()
    claimed = (
        HttpSource.objects.filter(pk=source.pk)
        .filter(Q(fetching_since__isnull=True) | Q(fetching_since__lt=started - CLAIM_TTL))
        .update(fetching_since=started, last_fetched_at=started)
    )
    sensor = Sensor.objects.get(pk=source.sensor_id)  # fresh: the cut-off and `active` as they are now
    if not claimed:
        raise SourceBusyError(sensor.key)
    fetch = SourceFetch.objects.create(source=source, started_at=started, since=sensor.latest_timestamp)
    try:
        if not sensor.active:
            raise SourceError(f"Sensor {sensor.key!r} is inactive: it refuses readings.")
        body, fetch.http_status = _download(source, since=sensor.latest_timestamp, session=session)
        records = _records_csv(source, body) if source.format == HttpSource.Format.CSV else _records_json(source, body)
        _ingest(fetch, records, sensor=sensor, received_at=started)
    except SourceError as exc:
        # The message may quote the answer (its keys, a header): stored as text PostgreSQL can hold.
        fetch.status, fetch.error = SourceFetch.Status.FAILED, text_storable(str(exc))[:ERROR_LIMIT]
        fetch.http_status = exc.http_status or fetch.http_status
        logger.warning("external source failed", extra={"sensor": sensor.key, "error": fetch.error})
    except Exception as exc:  # recorded (finally), then raised: the log and the state never stay "running"
        fetch.status, fetch.error = (
            SourceFetch.Status.FAILED,
            text_storable(f"{type(exc).__name__}: {exc}")[:ERROR_LIMIT],
        )
        raise
    else:
        fetch.status = SourceFetch.Status.SUCCESS
    finally:
        fetch.finished_at = timezone.now()
        fetch.save()
        _state_update(source, fetch)
    return fetch


def fetch_summary(fetch: SourceFetch) -> str:
    """One line of counts, or the error of a failed fetch, as the admin and `fetch_sources` show it."""
    if fetch.status != SourceFetch.Status.SUCCESS:
        return f"failed: {fetch.error}"
    return (
        f"{fetch.received} received, {fetch.skipped} skipped (not newer), {fetch.stored} stored, "
        f"{fetch.duplicates} duplicates, {fetch.rejected} rejected"
    )


def _state_update(source: HttpSource, fetch: SourceFetch) -> None:
    """Write the outcome to the source with an UPDATE of the state columns only (staff may be editing the rest)."""
    state: dict[str, Any]
    if fetch.status == SourceFetch.Status.SUCCESS:
        state = {"last_success_at": fetch.finished_at, "last_error": "", "consecutive_failures": 0}
    else:
        state = {"last_error": fetch.error, "consecutive_failures": F("consecutive_failures") + 1}
    HttpSource.objects.filter(pk=source.pk).update(fetching_since=None, **state)
    source.refresh_from_db(
        fields=["last_fetched_at", "last_success_at", "last_error", "consecutive_failures", "fetching_since"]
    )


def _download(source: HttpSource, *, since: datetime | None, session: requests.Session | None) -> tuple[bytes, int]:
    """GET the URL (with the cut-off in `since_param`); the whole body within `timeout` seconds and the size limit."""
    params = {source.since_param: since_text(since)} if source.since_param and since else None
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT[source.format], **source.headers}
    limit = settings.SENSORS_SOURCE_MAX_BYTES
    deadline = time.monotonic() + source.timeout
    try:
        with (
            _session(session) as http,
            http.get(source.url, params=params, headers=headers, timeout=source.timeout, stream=True) as response,
        ):
            code = response.status_code
            if not 200 <= code < 300:
                start = next(response.iter_content(200), b"").decode("utf-8", errors="replace")
                text = " ".join(filter(None, [f"HTTP {code}", response.reason]))
                raise SourceError(f"{text}: {start!r}" if start else text, http_status=code)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise SourceError(f"The answer is {int(declared):,} bytes; the limit is {limit:,}.", http_status=code)
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise SourceError(f"The answer is larger than the limit of {limit:,} bytes.", http_status=code)
                if time.monotonic() > deadline:
                    raise SourceError(f"The answer took longer than {source.timeout} s.", http_status=code)
                chunks.append(chunk)
    except requests.Timeout as exc:
        raise SourceError(f"No answer within {source.timeout} s ({type(exc).__name__}).") from exc
    except requests.RequestException as exc:
        raise SourceError(f"Request failed: {type(exc).__name__}: {exc}") from exc
    return b"".join(chunks), code


@contextmanager
def _session(session: requests.Session | None) -> Iterator[requests.Session]:
    """The caller's session (a scheduled run shares one), or a new one closed afterwards."""
    if session is not None:
        yield session
        return
    with requests.Session() as own:
        yield own


def since_text(moment: datetime) -> str:
    """The cut-off as sent in `since_param`: ISO 8601 in UTC with a `Z` (no `+` to be mangled in a query)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- parsing ----------------------------------------------------------------------------------------------------


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"The answer is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None


_MISSING = object()


def _lookup(document: Any, path: str) -> Any:
    """The value at a dotted path (a number picks a list item); a key holding the dots itself wins. `_MISSING`
    when there is none."""
    if isinstance(document, dict) and path in document:
        return document[path]
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _records_json(source: HttpSource, body: bytes) -> list[_Record]:
    text = _text(body)
    if not text.strip():
        return []  # an empty answer (HTTP 204, or nothing new) holds no records
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"The answer is not JSON ({exc}); it begins {text[:80]!r}.") from None
    items = _lookup(document, source.records_path) if source.records_path else document
    if items is _MISSING:
        keys = ", ".join(list(document)[:20]) if isinstance(document, dict) else _json_type(document)
        raise SourceError(f"The answer has no {source.records_path!r} (it holds: {keys}).")
    if not isinstance(items, list):
        where = repr(source.records_path) if source.records_path else "the top level"
        raise SourceError(f"Expected a list of records at {where}, found {_json_type(items)}.")
    records = []
    limit = settings.SENSORS_MAX_MESSAGE_BYTES
    for item in items:
        record = _Record(payload=json.dumps(item, ensure_ascii=False, default=str))
        records.append(record)
        if not isinstance(item, dict):
            record.errors["record"] = [f"Expected an object, got {_json_type(item)}."]
            continue
        try:
            size_check(item, limit=limit)  # the one size rule of every transport
        except ReadingInvalid as exc:
            record.errors.update(exc.errors)
        else:
            for name, path in (("timestamp", source.timestamp_field), ("value", source.value_field)):
                found = _lookup(item, path)
                if found is _MISSING:
                    record.errors[name] = [f"No field {path!r} in the record."]
                else:
                    setattr(record, name, found)
    return records


def _records_csv(source: HttpSource, body: bytes) -> list[_Record]:
    """Rows of a CSV answer with a header row: cells trimmed, blank lines and `#` lines skipped."""
    delimiter = source.csv_delimiter
    reader = csv.reader(io.StringIO(_text(body), newline=""), delimiter=delimiter)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    records = []
    for _, row, problem in csv_rows(reader):
        if row is None:
            records.append(_Record(payload=problem, errors={"row": [f"unreadable CSV: {problem}"]}))
            continue
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if header is None:
            header = cells
            columns = _csv_columns(source, header)
            continue
        record = _Record(payload=_csv_line(cells, delimiter))
        if len(cells) != len(header):
            record.errors["row"] = [f"expected {len(header)} columns, found {len(cells)}"]
        else:
            record.timestamp, record.value = cells[columns["timestamp"]], cells[columns["value"]]
        records.append(record)
    return records


def _csv_columns(source: HttpSource, header: list[str]) -> dict[str, int]:
    folded = [name.casefold() for name in header]
    columns = {}
    for name, wanted in (("timestamp", source.timestamp_field), ("value", source.value_field)):
        if wanted.casefold() not in folded:
            raise SourceError(f"The CSV header has no column {wanted!r} (columns: {', '.join(header)[:300]}).")
        columns[name] = folded.index(wanted.casefold())
    return columns


def _csv_line(cells: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(cells)
    return out.getvalue()


# --- what is new, what is bad -----------------------------------------------------------------------------------


def _moment(raw: Any, zone: ZoneInfo) -> datetime | None:
    """The instant of a record's timestamp text by the ingestion rules (`timestamp_parse`), or None."""
    if not isinstance(raw, str):
        return None
    try:
        return timestamp_parse(raw, zone=zone)
    except TimestampInvalid:
        return None


def _ingest(fetch: SourceFetch, records: list[_Record], *, sensor: Sensor, received_at: datetime) -> None:
    """Validate every record, skip those not newer than the cut-off, ingest the new good ones and keep the new
    bad ones (once each); the counts go on `fetch`."""
    zone = naive_timezone()
    since = fetch.since
    readable = False
    new_good: list[tuple[dict[str, Any], ReadingIn]] = []
    new_bad: list[_Record] = []
    for record in records:
        moment = reading = None
        data = {"timestamp": record.timestamp, "value": record.value}
        if not record.errors:
            try:
                reading = reading_parse(
                    data, sensor_key=sensor.key, received_at=received_at, text_values=True, zone=zone
                )
                moment = reading.timestamp
                readable = True
            except ReadingInvalid as exc:
                record.errors = exc.errors
        if moment is None:  # a bad record is skipped too when its time is readable and not newer
            moment = _moment(record.timestamp, zone)
        if since is not None and moment is not None and moment <= since:
            fetch.skipped += 1
        elif record.errors or reading is None:
            new_bad.append(record)
        else:
            new_good.append((data, reading))
    fetch.received = len(records)
    if records and not readable:
        raise SourceError(
            f"Not one of the {len(records)} records could be read; check the mapping. "
            f"The first: {errors_reason(records[0].errors)}"
        )
    result = IngestResult()
    for start in range(0, len(new_good), INGEST_CHUNK):
        chunk = new_good[start : start + INGEST_CHUNK]
        # Validated above already: straight to the service's storing half.
        batch = ValidatedBatch(
            messages=[data for data, _ in chunk],
            received_at=received_at,
            valid=[(index, reading) for index, (_, reading) in enumerate(chunk)],
            rejections=[],
        )
        result.add(readings_store(batch=batch, transport=Transport.HTTP_SOURCE))
    _rejections_keep_once(new_bad, sensor_key=sensor.key)
    fetch.stored, fetch.duplicates = result.stored, result.duplicates
    fetch.rejected = result.rejected + len(new_bad)


def _rejections_keep_once(records: list[_Record], *, sensor_key: str) -> None:
    """Keep bad records as `RejectedMessage`s (transport `HTTP_SOURCE`), leaving out those already kept for this
    sensor."""
    if not records:
        return
    by_payload = {rejection_payload(record.payload)[0]: record for record in records}  # as stored
    kept: set[str] = set()
    payloads = list(by_payload)
    for start in range(0, len(payloads), 500):
        kept.update(
            RejectedMessage.objects.filter(
                transport=Transport.HTTP_SOURCE, sensor_key=sensor_key, payload__in=payloads[start : start + 500]
            ).values_list("payload", flat=True)
        )
    fresh = [
        (record.payload, errors_reason(record.errors), sensor_key)
        for text, record in by_payload.items()
        if text not in kept
    ]
    if fresh:
        rejections_record(transport=Transport.HTTP_SOURCE, rejections=fresh)


# --- the scheduled run ------------------------------------------------------------------------------------------


def sources_fetch_due(
    *, progress: ProgressCallback | None = None, session: requests.Session | None = None
) -> SourcesRun:
    """Fetch every due source in turn (one HTTP session), then prune the fetch log; never stops at a failure."""
    progress = progress or no_progress
    ids = sources_due()
    run = SourcesRun()
    with _session(session) as shared:
        for index, pk in enumerate(ids):
            _fetch_one(pk, index, len(ids), run=run, session=shared, progress=progress)
    source_fetches_prune()
    progress(len(ids), len(ids), f"{len(ids)} sources fetched")
    return run


def _fetch_one(
    pk: int, index: int, total: int, *, run: SourcesRun, session: requests.Session, progress: ProgressCallback
) -> None:
    source = HttpSource.objects.select_related("sensor").filter(pk=pk).first()
    if source is None:  # deleted meanwhile
        return
    key = source.sensor.key
    progress(index, total, f"Fetching {key}")
    try:
        run.fetches.append(source_fetch(source=source, session=session))
    except SourceBusyError:
        run.busy.append(key)
    except Exception:  # recorded on the source by source_fetch; the other sources still go
        logger.exception("external source crashed", extra={"sensor": key})
        run.crashed.append(key)
        failed = SourceFetch.objects.filter(source_id=pk).order_by("-started_at", "-id").first()
        if failed is not None:
            run.fetches.append(failed)


def source_fetches_prune(*, now: datetime | None = None) -> int:
    """Delete fetch-log rows older than SENSORS_SOURCE_LOG_DAYS; returns how many went. Each source keeps its
    own last outcome in its state fields."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SENSORS_SOURCE_LOG_DAYS)
    deleted, _ = SourceFetch.objects.filter(started_at__lt=cutoff).delete()
    return deleted
