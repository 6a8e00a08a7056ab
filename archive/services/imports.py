"""Import: an archive (JSON lines or zip of CSV files) back into the database, in one transaction.

Into an empty database the restore is exact: primary keys are kept (sequences moved past them), and the counts and
checksums recomputed from the restored tables must equal the archive's, or nothing is written. With `merge`, rows
already there are kept and the archive's duplicates skipped (by natural key: platform slug, installation name on
its platform, sensor key, reading/detection instant, anomaly start, event kind and instant); new rows get new keys
and every reference is mapped to them.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.core.management.color import no_style
from django.db import DatabaseError, connection, models, transaction
from django.db.models.constants import OnConflict

from archive.services.export import archive_digests
from archive.services.tables import (
    ANOMALIES,
    BUCKET,
    DETECTIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    INSTALLATIONS,
    PLATFORMS,
    READINGS,
    SENSOR_EVENTS,
    SENSORS,
    SYSTEM_EVENTS,
    TABLES,
    TABLES_BY_NAME,
    ArchiveFormatError,
    Table,
    digests_new,
    digests_summary,
    instant_value,
    parse_cell,
    parse_value,
)
from common.exceptions import ApplicationError
from common.jobs import ProgressCallback, ProgressThrottle
from detection.models import Anomaly, Detection, SensorEvent, SystemEvent
from sensors.ingest.rollups import rollups_complete
from sensors.models import Installation, Platform, Reading, Sensor

MODELS: dict[str, type[models.Model]] = {
    "platforms": Platform,
    "installations": Installation,
    "sensors": Sensor,
    "readings": Reading,
    "detections": Detection,
    "anomalies": Anomaly,
    "sensor_events": SensorEvent,
    "system_events": SystemEvent,
}
# The tables that must be empty for a plain (non-merge) import. System events without a sensor are the jobs' own
# and never in an archive.
EMPTY_CHECK = ("platforms", "installations", "sensors", "readings", "detections", "anomalies", "sensor_events")


@dataclass
class ImportResult:
    merge: bool
    counts: dict[str, int]  # rows in the archive
    inserted: dict[str, int]
    skipped: dict[str, int]  # duplicates kept as they were (merge only)
    checksums: dict[str, str]  # the archive's, verified
    users_missing: int = 0  # user links (who acknowledged, resolved) left empty: no user with that email here
    verified: bool = False  # checksums recomputed from the restored database (plain import)


class _BadFile(Exception):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")


@dataclass
class _Batch:
    table: Table
    rows: list[list[Any]]
    where: str


@dataclass
class _Archive:
    header: dict[str, Any]
    batches: Iterator[_Batch]
    trailer: dict[str, Any] = field(default_factory=dict)  # filled once `batches` is exhausted


def database_is_empty() -> dict[str, int]:
    """The archive tables that hold rows, with their counts (empty dict: an import may go ahead)."""
    found = {}
    for name in EMPTY_CHECK:
        model = MODELS[name]
        if model._default_manager.exists():
            found[name] = model._default_manager.count()
    return found


def import_refuse_if_not_empty() -> None:
    """Raise the one-line refusal of a plain import when the database holds sensor data."""
    found = database_is_empty()
    if found:
        listed = ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in found.items())
        raise ApplicationError(
            f"The database is not empty ({listed}): import into an empty database, or merge with "
            "--merge (existing rows kept, duplicates skipped).",
            code="not_empty",
            status_code=409,
        )


def archive_import(*, path: Path, merge: bool = False, progress: ProgressCallback | None = None) -> ImportResult:
    """Restore the archive at `path` in one transaction; raise ApplicationError (nothing written) when the file is
    bad (the message names the line), damaged (its checksums differ from its rows), or the database is not empty
    and `merge` is false.

    The hourly roll-ups of the restored sensors are rebuilt from their readings.

    Plain import guarantees: every archive row restored with its primary key (readings and detections get new
    ones: they are identified by sensor and instant), and the restored tables' counts and checksums equal the
    archive's. Users are not in the archive: who acknowledged or resolved an anomaly is restored when a user with
    that email exists here, and left empty (counted in `users_missing`) when not.
    """
    if not path.is_file():
        raise ApplicationError(f"No such file: {path}", code="not_found", status_code=404)
    tick = ProgressThrottle(progress)
    try:
        with transaction.atomic():
            if not merge:
                import_refuse_if_not_empty()
            with _open(path, tick) as archive:
                restorer = _Restorer(merge=merge)
                result = restorer.run(archive)
            # The hourly roll-ups are derived, not archived: written here from the restored readings (the bucketed
            # queries read them), as the ingestion service keeps them for what it stores.
            tick(0, None, "hourly roll-ups")
            rollups_complete(sensor_ids=list(restorer.sensors.values()))
            if not merge:
                _check_restored(result, tick)
    except _BadFile as exc:
        raise ApplicationError(f"{path.name}: {exc}", code="bad_archive") from None
    return result


def _check_restored(result: ImportResult, tick: ProgressThrottle) -> None:
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), list(MODELS.values())):
            cursor.execute(sql)
    restored = archive_digests(progress=lambda done, total, message: tick(done, total, f"verifying: {message}"))
    for name, digest in restored.items():
        if digest.count != result.counts[name] or digest.hexdigest != result.checksums[name]:
            raise ApplicationError(
                f"The restored {name.replace('_', ' ')} differ from the archive ({digest.count:,} rows, checksum "
                f"{digest.hexdigest[:12]}…; the archive has {result.counts[name]:,}, {result.checksums[name][:12]}…): "
                "nothing was written.",
                code="restore_differs",
            )
    result.verified = True


# --- reading the two formats ---------------------------------------------------------------------------------


class _open:
    """The archive at `path`, JSON lines or zip of CSV files (told apart by the zip's signature)."""

    def __init__(self, path: Path, tick: ProgressThrottle) -> None:
        self.path = path
        self.tick = tick
        self._closers: list[Any] = []

    def __enter__(self) -> _Archive:
        with self.path.open("rb") as probe:
            is_zip = probe.read(4) == b"PK\x03\x04"
        if is_zip:
            return self._zip()
        return self._jsonl()

    def __exit__(self, *exc: object) -> None:
        for closer in reversed(self._closers):
            closer.close()

    # JSON lines ------------------------------------------------------------------------------------------------

    def _jsonl(self) -> _Archive:
        handle = self.path.open("rb")
        self._closers.append(handle)
        total = self.path.stat().st_size
        first = handle.readline()
        header = _json_line(first, 1)
        _check_header(header, "line 1")
        archive = _Archive(header=header, batches=iter(()))
        archive.batches = self._jsonl_batches(handle, archive, total, len(first))
        return archive

    def _jsonl_batches(self, handle: IO[bytes], archive: _Archive, total: int, done: int) -> Iterator[_Batch]:
        number = 1
        key: str | None = None
        for raw in handle:
            number += 1
            done += len(raw)
            where = f"line {number}"
            if archive.trailer:
                raise _BadFile(where, "text after the trailer")
            doc = _json_line(raw, number)
            kind = doc.get("type")
            try:
                if kind == "platform":
                    yield _Batch(PLATFORMS, [_row(PLATFORMS, doc)], where)
                    installations = _list(doc, "installations")
                    yield _Batch(INSTALLATIONS, [_row(INSTALLATIONS, item) for item in installations], where)
                elif kind == "sensor":
                    row = _row(SENSORS, doc)
                    key = row[1]
                    yield _Batch(SENSORS, [row], where)
                    for table in (ANOMALIES, SENSOR_EVENTS, SYSTEM_EVENTS):
                        yield _Batch(table, [_row(table, item, key) for item in _list(doc, table.name)], where)
                    for table in (READINGS, DETECTIONS):
                        yield _Batch(table, _series(table, _list(doc, table.name), key), where)
                elif kind in ("readings", "detections"):
                    if doc.get("sensor") != key or key is None:
                        raise ArchiveFormatError(f"a {kind} bucket must follow its sensor's document")
                    table = TABLES_BY_NAME[kind]
                    yield _Batch(table, _series(table, _list(doc, kind), key), where)
                elif kind == "trailer":
                    archive.trailer = _check_trailer(doc)
                else:
                    raise ArchiveFormatError(f"unknown document type {kind!r:.40}")
            except ArchiveFormatError as exc:
                raise _BadFile(where, str(exc)) from None
            self.tick(done, total, f"line {number:,}")
        if not archive.trailer:
            raise _BadFile(f"line {number}", "the file ends before its trailer (cut short?)")

    # zip of CSV files --------------------------------------------------------------------------------------------

    def _zip(self) -> _Archive:
        try:
            archive_zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as exc:
            raise _BadFile("zip", f"not a readable zip file ({exc})") from None
        self._closers.append(archive_zip)
        try:
            manifest = json.loads(archive_zip.read("manifest.json"))
        except KeyError:
            raise _BadFile("manifest.json", "missing: not a Sensorhub archive") from None
        except ValueError as exc:
            raise _BadFile("manifest.json", f"not JSON ({exc})") from None
        _check_header(manifest, "manifest.json")
        try:
            trailer = _check_trailer(manifest)
        except ArchiveFormatError as exc:
            raise _BadFile("manifest.json", str(exc)) from None
        archive = _Archive(header=manifest, batches=iter(()))
        archive.batches = self._csv_batches(archive_zip, archive, trailer)
        return archive

    def _csv_batches(
        self, archive_zip: zipfile.ZipFile, archive: _Archive, trailer: dict[str, Any]
    ) -> Iterator[_Batch]:
        total = sum(trailer["counts"].values())
        done = 0
        for table in TABLES:
            member = f"{table.name}.csv"
            try:
                raw = archive_zip.open(member)
            except KeyError:
                raise _BadFile(member, "missing from the zip") from None
            with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                reader = csv.reader(text)
                heading = next(reader, None)
                if heading != table.column_names:
                    raise _BadFile(f"{member} line 1", f"the columns must be {','.join(table.column_names)}")
                rows: list[list[Any]] = []
                start = 2
                try:
                    for cells in reader:
                        if len(cells) != len(table.columns):
                            raise ArchiveFormatError(f"{len(cells)} cells, expected {len(table.columns)}")
                        rows.append([parse_cell(c, v) for c, v in zip(table.columns, cells, strict=True)])
                        if len(rows) == BUCKET:
                            yield _Batch(table, rows, f"{member} lines {start}-{reader.line_num}")
                            done += len(rows)
                            self.tick(done, total, member)
                            rows, start = [], reader.line_num + 1
                except (ArchiveFormatError, csv.Error, UnicodeDecodeError) as exc:
                    raise _BadFile(f"{member} line {reader.line_num}", str(exc)) from None
                if rows:
                    yield _Batch(table, rows, f"{member} lines {start}-{reader.line_num}")
                    done += len(rows)
                    self.tick(done, total, member)
        archive.trailer = trailer


def _json_line(raw: bytes, number: int) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise _BadFile(f"line {number}", f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _BadFile(f"line {number}", "a document must be a JSON object")
    return doc


def _check_header(header: dict[str, Any], where: str) -> None:
    if header.get("format") != FORMAT_NAME or header.get("type") not in ("header", "manifest"):
        raise _BadFile(where, f"not a Sensorhub archive (no {FORMAT_NAME} header)")
    if header.get("version") != FORMAT_VERSION:
        raise _BadFile(where, f"archive version {header.get('version')!r}; this Sensorhub reads {FORMAT_VERSION}")


def _check_trailer(doc: dict[str, Any]) -> dict[str, Any]:
    counts, checksums = doc.get("counts"), doc.get("checksums")
    names = {t.name for t in TABLES}
    if (
        not isinstance(counts, dict)
        or not isinstance(checksums, dict)
        or set(counts) != names
        or set(checksums) != names
    ):
        raise ArchiveFormatError(f"counts and checksums must name the tables {', '.join(sorted(names))}")
    return {"counts": counts, "checksums": checksums}


def _list(doc: dict[str, Any], name: str) -> list[Any]:
    value = doc.get(name)
    if not isinstance(value, list):
        raise ArchiveFormatError(f"{name} must be a list")
    return value


def _row(table: Table, item: Any, key: str | None = None) -> list[Any]:
    if not isinstance(item, dict):
        raise ArchiveFormatError(f"an item of {table.name} must be an object")
    row = []
    for column in table.columns:
        if column.name == "sensor":
            row.append(key)
            continue
        if column.name not in item:
            raise ArchiveFormatError(f"{table.name}: {column.name} is missing")
        row.append(parse_value(column, item[column.name]))
    return row


def _series(table: Table, items: list[Any], key: str) -> list[list[Any]]:
    width = len(table.columns) - 1
    columns = table.columns[1:]
    rows = []
    for item in items:
        if not isinstance(item, list) or len(item) != width:
            raise ArchiveFormatError(f"an item of {table.name} must be a list of {width} values, not {item!r:.60}")
        text = item[0]
        # The canonical instant (what exports write) is taken as it is once it parses; others are rewritten.
        if isinstance(text, str) and len(text) == 27 and text[10] == "T" and text[-1] == "Z":
            instant_value(columns[0], text)
            row = [key, text]
        else:
            row = [key, parse_value(columns[0], text)]
        row.extend(parse_value(c, v) for c, v in zip(columns[1:], item[1:], strict=True))
        rows.append(row)
    return rows


# --- writing -------------------------------------------------------------------------------------------------


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


class _Restorer:
    def __init__(self, *, merge: bool) -> None:
        self.merge = merge
        self.digests = digests_new()
        self.inserted = dict.fromkeys(MODELS, 0)
        self.skipped = dict.fromkeys(MODELS, 0)
        self.platforms: dict[int, int] = {}  # archive id → id here
        self.installations: dict[int, int] = {}
        self.sensors: dict[str, int] = {}  # key → id here
        self.anomalies: dict[int, int] = {}
        self.users: dict[str, int | None] = {}
        self.users_missing = 0
        self.before: dict[str, int] = {}
        self._seen: dict[tuple[str, int], set[Any]] = {}  # (table, sensor id here) → natural keys present (merge)

    def run(self, archive: _Archive) -> ImportResult:
        if self.merge:
            self.before = {name: MODELS[name]._default_manager.count() for name in ("readings", "detections")}
        for batch in archive.batches:
            for row in batch.rows:
                self.digests[batch.table.name].add(batch.table, row)
            try:
                with transaction.atomic():  # a savepoint: PostgreSQL reports the failed statement, not a later one
                    getattr(self, f"_{batch.table.name}")(batch.rows, batch.where)
            except ArchiveFormatError as exc:
                raise _BadFile(batch.where, str(exc)) from None
            except DatabaseError as exc:
                raise _BadFile(batch.where, f"refused by the database: {str(exc).strip().splitlines()[0]}") from None
        counts, checksums = digests_summary(self.digests)
        expected = archive.trailer
        for name in counts:
            if counts[name] != expected["counts"][name] or checksums[name] != expected["checksums"][name]:
                raise _BadFile(
                    "trailer",
                    f"{name.replace('_', ' ')}: the file holds {counts[name]:,} rows with checksum "
                    f"{checksums[name][:12]}…, its trailer says {expected['counts'][name]:,}, "
                    f"{str(expected['checksums'][name])[:12]}… (changed or damaged)",
                )
        if self.merge:
            for name, before in self.before.items():
                self.inserted[name] = MODELS[name]._default_manager.count() - before
                self.skipped[name] = counts[name] - self.inserted[name]
        return ImportResult(
            merge=self.merge,
            counts=counts,
            inserted=self.inserted,
            skipped=self.skipped,
            checksums=checksums,
            users_missing=self.users_missing,
        )

    # helpers --------------------------------------------------------------------------------------------------

    def _insert(self, table: str, objs: Sequence[models.Model], *, keep_pk: bool, ignore: bool = False) -> None:
        """Insert as loaddata does (raw: `auto_now_add` times are the archive's, not now)."""
        if not objs:
            return
        model = MODELS[table]
        fields = [f for f in model._meta.local_concrete_fields if keep_pk or not f.primary_key]
        size = connection.ops.bulk_batch_size(fields, objs) or len(objs)
        on_conflict = OnConflict.IGNORE if ignore else None
        for start in range(0, len(objs), size):
            model._base_manager._insert(  # type: ignore[attr-defined]  # loaddata's raw insert
                objs[start : start + size], fields=fields, raw=True, on_conflict=on_conflict
            )
        if not ignore:
            self.inserted[table] += len(objs)

    def _insert_one(self, table: str, obj: models.Model) -> int:
        model = MODELS[table]
        fields = [f for f in model._meta.local_concrete_fields if not f.primary_key]
        returned = model._base_manager._insert(  # type: ignore[attr-defined]  # loaddata's raw insert
            [obj], fields=fields, returning_fields=[model._meta.pk], raw=True
        )
        self.inserted[table] += 1
        return int(returned[0][0])

    def _sensor_id(self, key: str) -> int:
        try:
            return self.sensors[key]
        except KeyError:
            raise ArchiveFormatError(f"sensor {key!r} is not in the archive before its rows") from None

    def _user(self, email: str | None) -> int | None:
        if email is None:
            return None
        if email not in self.users:
            self.users[email] = (
                get_user_model().objects.filter(email__iexact=email).values_list("id", flat=True).first()
            )
        if self.users[email] is None:
            self.users_missing += 1
        return self.users[email]

    def _present(self, table: str, sensor_id: int, model: type[models.Model], fields: tuple[str, ...]) -> set[Any]:
        """Natural keys of one sensor's rows already here (merge), read once per sensor and table."""
        cache_key = (table, sensor_id)
        if cache_key not in self._seen:
            self._seen[cache_key] = set(model._default_manager.filter(sensor_id=sensor_id).values_list(*fields))
        return self._seen[cache_key]

    # one method per table -------------------------------------------------------------------------------------

    def _platforms(self, rows: list[list[Any]], where: str) -> None:
        for id_, slug, name, description, latitude, longitude, created_at in rows:
            obj = Platform(
                id=id_,
                slug=slug,
                name=name,
                description=description,
                latitude=latitude,
                longitude=longitude,
                created_at=_at(created_at),
            )
            if id_ in self.platforms:
                raise ArchiveFormatError(f"platform {id_} appears twice")
            if self.merge:
                existing = Platform.objects.filter(slug=slug).values_list("id", flat=True).first()
                if existing is not None:
                    self.platforms[id_] = existing
                    self.skipped["platforms"] += 1
                    continue
                obj.id = None
                self.platforms[id_] = self._insert_one("platforms", obj)
            else:
                self._insert("platforms", [obj], keep_pk=True)
                self.platforms[id_] = id_

    def _installations(self, rows: list[list[Any]], where: str) -> None:
        objs = []
        for id_, platform_id, name, height, orientation, volume, porosity, created_at in rows:
            if platform_id not in self.platforms:
                raise ArchiveFormatError(f"installation {id_} names platform {platform_id}, not in the archive")
            obj = Installation(
                id=id_,
                platform_id=self.platforms[platform_id],
                name=name,
                height=height,
                orientation=orientation,
                volume=volume,
                porosity=porosity,
                created_at=_at(created_at),
            )
            if self.merge:
                existing = (
                    Installation.objects.filter(platform_id=obj.platform_id, name=name)
                    .values_list("id", flat=True)
                    .first()
                )
                if existing is not None:
                    self.installations[id_] = existing
                    self.skipped["installations"] += 1
                    continue
                obj.id = None
                self.installations[id_] = self._insert_one("installations", obj)
            else:
                self.installations[id_] = id_
                objs.append(obj)
        self._insert("installations", objs, keep_pk=True)

    def _sensors(self, rows: list[list[Any]], where: str) -> None:
        columns = SENSORS.column_names
        objs = []
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            key = values["key"]
            if key in self.sensors:
                raise ArchiveFormatError(f"sensor {key!r} appears twice")
            for ref, mapping in (("platform_id", self.platforms), ("installation_id", self.installations)):
                if values[ref] is not None:
                    if values[ref] not in mapping:
                        raise ArchiveFormatError(f"sensor {key!r}: {ref} {values[ref]} is not in the archive")
                    values[ref] = mapping[values[ref]]
            for name in ("created_at", "latest_timestamp"):
                values[name] = _dt(values[name])
            obj = Sensor(**values)
            if self.merge:
                existing = Sensor.objects.filter(key=key).values_list("id", flat=True).first()
                if existing is not None:
                    self.sensors[key] = existing
                    self.skipped["sensors"] += 1
                    continue
                obj.id = None
                self.sensors[key] = self._insert_one("sensors", obj)
            else:
                self.sensors[key] = obj.id
                objs.append(obj)
        self._insert("sensors", objs, keep_pk=True)

    def _anomalies(self, rows: list[list[Any]], where: str) -> None:
        columns = ANOMALIES.column_names
        objs = []
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            archive_id = values["id"]
            values["sensor_id"] = self._sensor_id(values.pop("sensor"))
            values["acknowledged_by_id"] = self._user(values.pop("acknowledged_by"))
            values["resolved_by_id"] = self._user(values.pop("resolved_by"))
            for name in ("started_at", "ended_at", "closed_at", "peak_at", "acknowledged_at", "resolved_at"):
                values[name] = _dt(values[name])
            obj = Anomaly(**values)
            if self.merge:
                present = self._present("anomalies", obj.sensor_id, Anomaly, ("started_at", "id"))
                existing = next((id_ for started, id_ in present if started == obj.started_at), None)
                if existing is not None:
                    self.anomalies[archive_id] = existing
                    self.skipped["anomalies"] += 1
                    continue
                obj.id = None
                self.anomalies[archive_id] = self._insert_one("anomalies", obj)
            else:
                self.anomalies[archive_id] = archive_id
                objs.append(obj)
        self._insert("anomalies", objs, keep_pk=True)

    def _sensor_events(self, rows: list[list[Any]], where: str) -> None:
        objs = []
        for id_, key, kind, at, level, anomaly_id, message, created_at in rows:
            if anomaly_id is not None and anomaly_id not in self.anomalies:
                raise ArchiveFormatError(f"sensor event {id_} names anomaly {anomaly_id}, not in the archive")
            obj = SensorEvent(
                id=id_,
                sensor_id=self._sensor_id(key),
                kind=kind,
                at=_at(at),
                level=level,
                anomaly_id=None if anomaly_id is None else self.anomalies[anomaly_id],
                message=message,
                created_at=_at(created_at),
            )
            if self.merge:
                present = self._present("sensor_events", obj.sensor_id, SensorEvent, ("kind", "at"))
                if (kind, obj.at) in present:
                    self.skipped["sensor_events"] += 1
                    continue
                obj.id = None
                self._insert_one("sensor_events", obj)
                present.add((kind, obj.at))
            else:
                objs.append(obj)
        self._insert("sensor_events", objs, keep_pk=True)

    def _system_events(self, rows: list[list[Any]], where: str) -> None:
        objs = []
        for id_, key, kind, job, message, data, created_at in rows:
            sensor_id = self._sensor_id(key)
            obj = SystemEvent(
                id=id_,
                sensor_id=sensor_id,
                kind=kind,
                job=job,
                message=message,
                data=data,
                created_at=_at(created_at),
            )
            if self.merge:
                fields = ("kind", "created_at", "message")
                present = self._present("system_events", sensor_id, SystemEvent, fields)
                natural = (kind, obj.created_at, message)
                if natural in present:
                    self.skipped["system_events"] += 1
                    continue
                obj.id = None
                self._insert_one("system_events", obj)
                present.add(natural)
            else:
                obj.id = None
                objs.append(obj)
        self._insert("system_events", objs, keep_pk=False)

    def _readings(self, rows: list[list[Any]], where: str) -> None:
        objs = [
            Reading(sensor_id=self._sensor_id(key), timestamp=datetime.fromisoformat(ts), value=value)
            for key, ts, value in rows
        ]
        self._insert("readings", objs, keep_pk=False, ignore=self.merge)

    def _detections(self, rows: list[list[Any]], where: str) -> None:
        objs = [
            Detection(
                sensor_id=self._sensor_id(key),
                timestamp=datetime.fromisoformat(ts),
                level=level,
                distance=distance,
                status=status,
            )
            for key, ts, level, distance, status in rows
        ]
        self._insert("detections", objs, keep_pk=False, ignore=self.merge)
