"""Detection of new readings in batches over many sensors: load, detect, save, hand off.

`readings_detect` is what the Celery task of the ingest hand-off calls. One call handles any number of sensors
with a fixed number of queries (lock the states, read the undetected readings, write detections, anomalies,
events and states; the bulk writes by COPY on PostgreSQL), then hands the detections to the broadcast after
commit, so one worker keeps up with thousands of sensors (docs/benchmarks.md). The detectors come from
`detector_cache`, the anomalies and sensor events from `detection.tracking`; `detectors_check` is the scheduled
sweep (silent sensors, readings no hand-off reached).

Guarantees:
- Each sensor's readings go through its detector in timestamp order, each once. The detector state row is
  locked while a batch is detected, so two workers never detect the same sensor at once.
- A reading committed after a newer one of its sensor was detected is stored as `late` (no level): the series
  only moves forward.
- Each worker keeps detectors ready in memory (`detector_cache`); a detector that is not current is rebuilt
  from its stored state with exactly the same results.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial, reduce
from operator import or_
from typing import Any, NamedTuple

import numpy as np
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from common.db import column_of, copy_rows
from detection import discord, engine, tracking
from detection.broadcast import detections_broadcast
from detection.models import FLAGGED, Anomaly, Baseline, Detection, DetectorState, Method, SensorEvent, Status
from detection.selectors import detector_states_behind
from detection.services.detector_cache import AnyDetector, detector_keep, detector_reusable, detector_take
from detection.services.events import sensor_events_store
from detection.services.settings import default_seed_id, detector_settings_ensure
from sensors.models import Reading, Sensor

logger = logging.getLogger(__name__)

SensorState = DetectorState.SensorState
PENDING_CHUNK = 400
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATE_FIELDS = [
    "method",
    "baseline",
    "window",
    "values",
    "method_state",
    "fed",
    "last_timestamp",
    "state",
    "anomaly",
    "ok_streak",
    "version",
]
ARRAY_FIELDS = ["values", "method_state"]  # ~10 kB a sensor: read only to rebuild a detector


@dataclass
class DetectResult:
    sensors: int = 0
    detected: int = 0
    late: int = 0
    flagged: int = 0
    anomalies_opened: int = 0
    events: int = 0
    no_baseline: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # sensor key → why its detector could not be built

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DetectionRow(NamedTuple):
    """One reading's detection as the batch writes, tracks and broadcasts it (the attributes of `Detection` that
    `tracking.Tracker` and `broadcast.detection_payload` read), without a model instance per reading."""

    timestamp: datetime
    level: float | None
    distance: float | None
    status: str


def _feed(detector: AnyDetector, values: list[float], timestamps: list[datetime]) -> tuple[np.ndarray, np.ndarray]:
    """(levels, distances) of the values, in order, NaN where undefined. The discord method takes the batch at
    once (its numerical work is one compiled call per sensor and batch) and uses the timestamps to find gaps."""
    if not values:
        return np.empty(0), np.empty(0)
    if isinstance(detector, discord.DiscordDetector):
        return detector.feed_arrays(values, [timestamp.timestamp() for timestamp in timestamps])
    verdicts = [detector.feed(value) for value in values]
    return (
        np.array([math.nan if v.level is None else v.level for v in verdicts], dtype=np.float64),
        np.array([math.nan if v.distance is None else v.distance for v in verdicts], dtype=np.float64),
    )


def _optional(values: np.ndarray) -> list[float | None]:
    return [None if value != value else value for value in values.tolist()]  # NaN is the only x != x


def _event(sensor_id: int, key: str, change: tracking.Change) -> tuple[str, SensorEvent]:
    """A state change as `sensor_events_store` takes it: (sensor key, unsaved event)."""
    return key, SensorEvent(
        sensor_id=sensor_id,
        kind=change.kind,
        at=change.at,
        level=change.level,
        anomaly=change.anomaly,
        message=f"{key}: {change.text}",
    )


# --- the batch --------------------------------------------------------------------------------------------------


def readings_detect(*, sensors: Mapping[int, datetime | None]) -> DetectResult:
    """Detect the undetected readings of `sensors`, a map of sensor id to the earliest timestamp the caller
    knows is new (the ingest hand-off) or None (the periodic sweep: whatever is newer than the last detected).

    Sensors with detection disabled are skipped; sensors without a detector state start one (from their
    settings' baseline, else the default seed) at the given timestamp.
    """
    result = DetectResult()
    keys = dict(Sensor.objects.filter(pk__in=list(sensors), detection_enabled=True).values_list("pk", "key"))
    if not keys:
        return result
    configs = detector_settings_ensure(list(keys))
    seed_id = default_seed_id()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The planner's estimates for a batch's joins (1,000 sensors' bounds) pass jit_above_cost, and
            # compiling them costs 10-80 ms a batch, more than running them.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        states = _states_locked(list(keys))
        missing = [pk for pk in keys if pk not in states]
        if missing:
            created = []
            for pk in missing:
                config = configs[pk]
                baseline_id = None
                if config.method == Method.BASELINE:
                    baseline_id = config.active_baseline_id() or seed_id
                    if baseline_id is None:
                        result.no_baseline.append(keys[pk])
                        continue
                created.append(
                    DetectorState(sensor_id=pk, method=config.method, baseline_id=baseline_id, window=config.window)
                )
            DetectorState.objects.bulk_create(created, ignore_conflicts=True)
            states.update(_states_locked([s.sensor_id for s in created]))
        pending = _pending(states, sensors)
        chosen = {
            pk: configs[pk].active_baseline_id() or states[pk].baseline_id or seed_id
            for pk in pending
            if configs[pk].method == Method.BASELINE
        }
        # The baselines in use, without their values (loaded only to seed a detector not kept in memory).
        baselines = Baseline.objects.defer("values").in_bulk({pk for pk in chosen.values() if pk is not None})
        # The stored arrays (~10 kB a sensor) only for the detectors this worker does not hold current.
        _states_arrays_fetch(
            states,
            [
                pk
                for pk in pending
                if not detector_reusable(
                    states[pk], configs[pk], baselines.get(chosen.get(pk)) if pk in chosen else None
                )
            ],
        )
        # 1. Every detector is fed its sensor's fresh readings (late ones, not after the last detected reading,
        # come first: readings are in time order).
        fed: list[tuple[int, int, list[tuple[datetime, float]], np.ndarray, np.ndarray]] = []
        for pk, readings in pending.items():
            state, config = states[pk], configs[pk]
            baseline = None
            if config.method == Method.BASELINE:
                baseline = baselines.get(chosen[pk])
                if baseline is None:
                    result.no_baseline.append(keys[pk])
                    continue
            try:
                detector = detector_take(state, config, baseline)
            except (engine.SeriesError, ValueError) as exc:  # e.g. a baseline too short for the window
                result.failed[keys[pk]] = str(exc)
                continue
            late = 0
            if state.last_timestamp is not None:
                while late < len(readings) and readings[late][0] <= state.last_timestamp:
                    late += 1
            fresh = readings[late:]
            levels, distances = _feed(detector, [value for _, value in fresh], [timestamp for timestamp, _ in fresh])
            fed.append((pk, late, readings, levels, distances))
            if fresh:
                state.last_timestamp = fresh[-1][0]
            state.fed += len(fresh)
            result.detected += len(fresh)
            result.late += late
            detector_keep(state, detector)
        # 2. The statuses of the whole batch at once, each against its sensor's thresholds.
        sizes = [len(levels) for _, _, _, levels, _ in fed]
        all_levels = np.concatenate([levels for _, _, _, levels, _ in fed]) if fed else np.empty(0)
        statuses = engine.statuses_of(
            all_levels,
            warning=np.repeat([configs[pk].warning_level for pk, *_ in fed], sizes),
            critical=np.repeat([configs[pk].critical_level for pk, *_ in fed], sizes),
        )
        result.flagged = sum(status in FLAGGED for status in statuses)
        # 3. Each sensor's detections, in time order, through its anomaly and state tracking.
        by_sensor: dict[tuple[int, str], list[DetectionRow]] = {}
        events: list[tuple[str, SensorEvent]] = []
        touched: dict[int, Anomaly] = {}
        offset = 0
        for (pk, late, readings, levels, distances), size in zip(fed, sizes, strict=True):
            rows = [DetectionRow(timestamp, None, None, Status.LATE.value) for timestamp, _ in readings[:late]]
            rows += map(
                DetectionRow,
                [timestamp for timestamp, _ in readings[late:]],
                _optional(levels),
                _optional(distances),
                statuses[offset : offset + size],
            )
            offset += size
            config = configs[pk]
            tracker = tracking.Tracker(
                states[pk],
                ok_run=config.ok_run,
                cooldown_seconds=config.cooldown_seconds,
                new_anomaly=partial(Anomaly, sensor_id=pk),
            )
            for row in rows:
                tracker.track(row.timestamp, row.level, row.status)
            result.anomalies_opened += tracker.opened
            touched.update(tracker.changed)
            events += (_event(pk, keys[pk], change) for change in tracker.changes)
            by_sensor[(pk, keys[pk])] = rows
        result.sensors = len(pending)
        result.events = len(events)
        _detections_insert(by_sensor)
        _anomalies_save(list(touched.values()))
        sensor_events_store(events)
        for pk, *_ in fed:
            state = states[pk]
            if state.anomaly is not None:  # a new anomaly got its id only now
                state.anomaly_id = state.anomaly.pk
        _states_save([states[pk] for pk, *_ in fed])
        transaction.on_commit(lambda: detections_broadcast(by_sensor))
    if result.failed:
        logger.warning("detection failed for some sensors", extra={"sensors": result.failed})
    if result.no_baseline:
        logger.warning(
            "detection skipped: no baseline (run manage.py load_baselines)", extra={"sensors": result.no_baseline}
        )
    return result


def _states_locked(sensor_ids: list[int]) -> dict[int, DetectorState]:
    """The sensors' states, locked, without their arrays (`_states_arrays_fetch` reads those where needed)."""
    if not sensor_ids:
        return {}
    query = (
        DetectorState.objects.select_for_update(of=("self",))
        .select_related("anomaly")
        .defer(*ARRAY_FIELDS)
        .filter(sensor_id__in=sensor_ids)
        .order_by("sensor_id")  # one lock order for every worker: no deadlock
    )
    return {state.sensor_id: state for state in query}


def _states_arrays_fetch(states: dict[int, DetectorState], sensor_ids: list[int]) -> None:
    """Load the stored arrays of these (already locked) states, in one query: what a detector is rebuilt from."""
    if not sensor_ids:
        return
    rows = DetectorState.objects.filter(sensor_id__in=sensor_ids).values_list("sensor_id", *ARRAY_FIELDS)
    for sensor_id, *arrays in rows:
        for name, data in zip(ARRAY_FIELDS, arrays, strict=True):
            setattr(states[sensor_id], name, data)


def _pending(
    states: dict[int, DetectorState], hints: Mapping[int, datetime | None]
) -> dict[int, list[tuple[datetime, float]]]:
    """Each sensor's undetected readings, oldest first: everything after its last detected reading, and from
    the caller's earliest new timestamp on (which finds readings committed late)."""
    bounds: dict[int, datetime] = {}
    for pk, state in states.items():
        known = [t for t in (hints.get(pk), state.last_timestamp) if t is not None]
        if known:
            bounds[pk] = min(known)
    pending: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    if not bounds:
        return pending
    last = {pk: states[pk].last_timestamp for pk in bounds}
    for sensor_id, timestamp, value in _undetected(bounds, last):
        pending[sensor_id].append((timestamp, value))
    return pending


def _undetected(bounds: dict[int, datetime], last: dict[int, datetime | None]) -> Iterator[tuple[int, datetime, float]]:
    """(sensor id, timestamp, value) of readings from each sensor's bound on that have no detection, ordered."""
    if connection.vendor == "postgresql":
        # One join against the bounds as arrays: an OR of 1,000 conditions costs the ORM and the planner ~0.5 s.
        # LATERAL: each sensor's readings from its bound on through the (sensor, timestamp) index; a plain join
        # let the planner merge the whole tables. Only readings not after the sensor's last detected one are
        # probed against the detections' index: this service alone writes detections, in the transaction that
        # moves `last_timestamp` (forward only) to the newest of them, so none is newer (and if one were, the
        # unique constraint would fail the batch, never detect a reading twice).
        sql = f"""
            SELECT b.sensor_id, (extract(epoch FROM r."timestamp") * 1000000)::bigint, r.value
            FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS b(sensor_id, since, last)
            CROSS JOIN LATERAL (
                SELECT r."timestamp", r.value FROM {Reading._meta.db_table} r
                WHERE r.sensor_id = b.sensor_id AND r."timestamp" >= b.since AND (r."timestamp" > b.last OR NOT EXISTS (
                    SELECT 1 FROM {Detection._meta.db_table} d
                    WHERE d.sensor_id = r.sensor_id AND d."timestamp" = r."timestamp"
                ))
            ) r
            ORDER BY b.sensor_id, r."timestamp"
        """  # noqa: S608 (table names from the models)
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(bounds), list(bounds.values()), [last[pk] for pk in bounds]])
            rows = cursor.fetchall()
        # Microseconds since the epoch, an integer: exact, and ~10 times cheaper to load than a timestamptz
        # (Django's time-zone-aware loader is pure Python): 10,000 readings a batch.
        yield from ((sensor_id, EPOCH + timedelta(microseconds=us), value) for sensor_id, us, value in rows)
        return
    detected = Detection.objects.filter(sensor_id=OuterRef("sensor_id"), timestamp=OuterRef("timestamp"))
    items = sorted(bounds.items())
    for start in range(0, len(items), PENDING_CHUNK):  # SQLite limits the depth of an expression tree
        condition = reduce(
            or_, (Q(sensor_id=pk, timestamp__gte=since) for pk, since in items[start : start + PENDING_CHUNK])
        )
        yield from (
            Reading.objects.filter(condition)
            .filter(~Exists(detected))
            .order_by("sensor_id", "timestamp")
            .values_list("sensor_id", "timestamp", "value")
        )


def _detections_insert(by_sensor: Mapping[tuple[int, str], list[DetectionRow]]) -> None:
    """The batch's detections: one binary COPY on PostgreSQL (bulk_create spends ~0.1 s per 1,000 rows building
    and quoting model instances), bulk_create elsewhere. A duplicate fails the batch either way."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            copy_rows(
                cursor,
                connection.ops.quote_name(Detection._meta.db_table),
                ["sensor_id", '"timestamp"', "level", "distance", "status"],
                ((pk, *row) for (pk, _), rows in by_sensor.items() for row in rows),
                types=["int8", "timestamptz", "float8", "float8", "text"],
            )
        return
    Detection.objects.bulk_create(
        (Detection(sensor_id=pk, **row._asdict()) for (pk, _), rows in by_sensor.items() for row in rows),
        batch_size=5000,
    )


def _anomalies_save(anomalies: list[Anomaly]) -> None:
    """The anomalies the batch opened (one INSERT) and changed (one parameterised UPDATE each, sent as one batch):
    a fixed number of round trips however many sensors are alarmed at once."""
    new = [anomaly for anomaly in anomalies if anomaly.pk is None]
    changed = [anomaly for anomaly in anomalies if anomaly.pk is not None]  # before the INSERT gives `new` ids
    Anomaly.objects.bulk_create(new)
    if not changed:
        return
    quote = connection.ops.quote_name
    columns = [column_of(Anomaly, name) for name in tracking.ANOMALY_FIELDS]
    assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {quote(Anomaly._meta.db_table)} SET {assignments} WHERE id = %s",  # noqa: S608 (names)
            [[*(getattr(anomaly, column) for column in columns), anomaly.pk] for anomaly in changed],
        )


# The staging table of `_states_save` on PostgreSQL: this session's own, emptied after each use.
STATES_INCOMING = "detection_detectorstate_incoming"
STATES_INCOMING_TYPES = {
    "method": "text",
    "baseline_id": "int8",
    "window": "int8",
    "values": "bytea",
    "method_state": "bytea",
    "fed": "int8",
    "last_timestamp": "timestamptz",
    "state": "text",
    "anomaly_id": "int8",
    "ok_streak": "int8",
    "version": "int8",
    "updated_at": "timestamptz",
}


_staging_ready: dict[int, bool] = {}  # by connection: the staging table's storage is set once per session


def _states_save(states: list[DetectorState], fields: list[str] = STATE_FIELDS) -> None:
    """Write `fields` of the states. On PostgreSQL the whole states (arrays of ~10 kB each) go by binary COPY
    into a staging table and one UPDATE … FROM it; otherwise one parameterised UPDATE per state, sent as one
    batch (Django's bulk_update builds a CASE per field and row: 10 s for 1,000 states)."""
    if not states:
        return
    now = timezone.now()
    table = connection.ops.quote_name(DetectorState._meta.db_table)
    columns = [column_of(DetectorState, name) for name in fields] + ["updated_at"]
    rows = []
    for state in states:
        state.updated_at = now
        rows.append([state.sensor_id, *(getattr(state, column) for column in columns)])
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(states) > 1:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {STATES_INCOMING} (sensor_id int8, "
                + ", ".join(f"{quote(column)} {kind}" for column, kind in STATES_INCOMING_TYPES.items())
                + ") ON COMMIT DELETE ROWS"
            )
            if not _staging_ready.get(id(connection.connection)):
                # float64 bytes do not compress: storing them as they are spares a compression attempt per row.
                cursor.execute(
                    f"ALTER TABLE {STATES_INCOMING} "
                    + ", ".join(f"ALTER COLUMN {quote(column)} SET STORAGE EXTERNAL" for column in ARRAY_FIELDS)
                )
                _staging_ready[id(connection.connection)] = True
            copy_rows(
                cursor,
                STATES_INCOMING,
                ["sensor_id", *(quote(column) for column in columns)],
                rows,
                types=["int8", *(STATES_INCOMING_TYPES[column] for column in columns)],
            )
            assignments = ", ".join(f"{quote(column)} = i.{quote(column)}" for column in columns)
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM {STATES_INCOMING} AS i "  # noqa: S608 (names)
                "WHERE t.sensor_id = i.sensor_id"
            )
            cursor.execute(f"TRUNCATE {STATES_INCOMING}")  # a second batch in the same transaction starts empty
            return
        assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE sensor_id = %s",  # noqa: S608 (names)
            [[*row[1:], row[0]] for row in rows],
        )


# --- silence and the sweep ----------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    silent: int = 0
    swept: int = 0
    detect: DetectResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"silent": self.silent, "swept": self.swept, "detect": self.detect.as_dict() if self.detect else None}


def detectors_check(*, now: datetime | None = None) -> CheckResult:
    """The scheduled check (every minute by migration): sensors silent for longer than their `silence_seconds`
    become not_available (one event each), and readings no hand-off task detected (a lost task, a worker
    that died) are detected now."""
    now = now or timezone.now()
    result = CheckResult()
    candidates = (
        DetectorState.objects.exclude(state=SensorState.NOT_AVAILABLE)
        .filter(sensor__detection_enabled=True)
        .values_list("sensor_id", "sensor__key", "sensor__latest_timestamp", "sensor__detector__silence_seconds")
    )
    silent = [
        (pk, key, latest)
        for pk, key, latest, silence in candidates
        if latest is not None and silence is not None and now - latest > timedelta(seconds=silence)
    ]
    if silent:
        with transaction.atomic():
            states = _states_locked([pk for pk, _, _ in silent])
            events = []
            for pk, key, latest in silent:
                state = states.get(pk)
                change = tracking.silence(state, at=now, latest=latest) if state is not None else None
                if change is not None:
                    events.append(_event(pk, key, change))
            sensor_events_store(events)
            _states_save([state for state in states.values()], fields=["state"])
            result.silent = len(events)
    behind = list(detector_states_behind().values_list("sensor_id", flat=True))
    if behind:
        result.swept = len(behind)
        result.detect = readings_detect(sensors=dict.fromkeys(behind))
    return result
