"""Detection of new readings: levels, anomalies and sensor events, in batches over many sensors.

`readings_detect` is what the Celery task of the ingest hand-off calls. One call handles any number of sensors
with a fixed number of queries (lock the states, read the undetected readings, write detections, anomalies,
events and states), so one worker keeps up with thousands of sensors (docs/benchmarks.md).

Guarantees:
- Each sensor's readings go through its detector in timestamp order, each once. The detector state row is
  locked while a batch is detected, so two workers never detect the same sensor at once.
- A reading committed after a newer one of its sensor was detected is stored as `late` (no level): the series
  only moves forward.
- Each worker keeps detectors ready in memory (LRU); the stored state's version says whether the cached one is
  current, else it is rebuilt from the baseline and the stored values, with exactly the same results.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any, NamedTuple

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from common.db import column_of, copy_rows
from detection import discord, engine
from detection.broadcast import DetectionLike, detections_broadcast
from detection.models import (
    FLAGGED,
    Anomaly,
    Baseline,
    Detection,
    DetectorSettings,
    DetectorState,
    Method,
    SensorEvent,
    Status,
    array_from_bytes,
    array_to_bytes,
)
from detection.selectors import detector_states_behind
from detection.services.events import sensor_events_store
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


# --- settings ---------------------------------------------------------------------------------------------------


def detector_settings_ensure(sensor_ids: list[int]) -> dict[int, DetectorSettings]:
    """Each sensor's detector settings, created with the DETECTION_* defaults where missing."""
    found = {s.sensor_id: s for s in DetectorSettings.objects.filter(sensor_id__in=sensor_ids)}
    missing = [pk for pk in sensor_ids if pk not in found]
    if missing:
        defaults = DetectorSettings.defaults()
        DetectorSettings.objects.bulk_create(
            [DetectorSettings(sensor_id=pk, **defaults) for pk in missing], ignore_conflicts=True
        )
        found.update({s.sensor_id: s for s in DetectorSettings.objects.filter(sensor_id__in=missing)})
    return found


def default_seed_id() -> int | None:
    """The seed baseline new sensors start from (DETECTION_DEFAULT_SEED), or None before `load_baselines`."""
    return (
        Baseline.objects.filter(name=settings.DETECTION_DEFAULT_SEED, kind=Baseline.Kind.SEED)
        .values_list("pk", flat=True)
        .first()
    )


# --- detectors kept ready in this process -------------------------------------------------------------------------


@dataclass
class _Cached:
    version: int
    baseline_id: int | None
    window: int
    detector: engine.Detector | discord.DiscordDetector


_cache: OrderedDict[int, _Cached] = OrderedDict()


def _seed(meta: Baseline, m: int) -> engine._Seeded:
    """The seeded stream of the baseline `meta` (a row read without its values) for window m."""

    def load() -> tuple[np.ndarray, float]:
        values = Baseline.objects.only("values").get(pk=meta.pk).array()
        if meta.window == m:
            return values, meta.max_distance
        # A stored max distance holds for the baseline's own window only.
        return values, engine.baseline_stats(values, m, meta.joins)["max_distance"]

    # Keyed by id and creation time: SQLite may give a deleted baseline's id to a new one.
    return engine.seeded((meta.pk, meta.created_at), m, load)


def _wanted(config: DetectorSettings, baseline: Baseline | None) -> tuple[str, int | None, int]:
    """(method, baseline id, window) the sensor's detector must have now."""
    method = config.method
    baseline_id = baseline.pk if baseline is not None and method == Method.BASELINE else None
    return method, baseline_id, config.window


def _reusable(state: DetectorState, config: DetectorSettings, baseline: Baseline | None) -> bool:
    """Whether this worker's kept detector is current with `state` (then the stored arrays are not needed)."""
    wanted = _wanted(config, baseline)
    cached = _cache.get(state.sensor_id)
    return (
        (state.method, state.baseline_id, state.window) == wanted
        and cached is not None
        and (cached.version, cached.baseline_id, cached.window) == (state.version, wanted[1], wanted[2])
    )


def _detector(
    state: DetectorState, config: DetectorSettings, baseline: Baseline | None
) -> engine.Detector | discord.DiscordDetector:
    """The sensor's detector, current with `state`. When its method, window or baseline changed it starts anew
    from the sensor's recent values (the baseline method replays the last m; the discord method takes them as
    its history). Updates `state.method`/`baseline`/`window` accordingly."""
    method, baseline_id, m = _wanted(config, baseline)
    reuse = _reusable(state, config, baseline)
    same = (state.method, state.baseline_id, state.window) == (method, baseline_id, m)
    # Taken out of the cache while it is fed: if the batch fails half-way, no half-fed detector stays behind
    # under the version still stored. `_remember` puts it back with the new version.
    cached = _cache.pop(state.sensor_id, None)
    detector: engine.Detector | discord.DiscordDetector
    if reuse and cached is not None:
        detector = cached.detector
    elif method == Method.DISCORD:
        vector = array_from_bytes(state.method_state)
        if same and len(vector) == discord.STATE_FLOATS:
            detector = discord.DiscordDetector.from_vector(m, vector, learning=settings.DETECTION_DISCORD_LEARNING)
        else:  # a new method or window (or a state of another layout): start from the recent values
            detector = discord.DiscordDetector(m, learning=settings.DETECTION_DISCORD_LEARNING)
            detector.feed_arrays(_recent_values(state))
    else:
        if baseline is None:  # the batch skips baseline-method sensors without a baseline before this
            raise ValueError("the baseline method needs a baseline")
        values = _recent_values(state) if not same else array_from_bytes(state.values)
        if not same:
            values = values[-m:]
        detector = engine.Detector.resume(_seed(baseline, m), values, warning=0, critical=0)
    state.method, state.baseline_id, state.window = method, baseline_id, m
    detector.warning, detector.critical = config.warning_level, config.critical_level
    return detector


def _recent_values(state: DetectorState) -> np.ndarray:
    """The sensor's recent values as stored (what another method or window starts from): the discord method's
    are inside its state vector, the baseline method's are `values`."""
    if state.method == Method.DISCORD and state.method_state:
        vector = array_from_bytes(state.method_state)
        if len(vector) == discord.STATE_FLOATS:
            return discord.DiscordDetector.from_vector(state.window, vector).values
        return np.empty(0)  # a state of another layout: nothing to start from
    return array_from_bytes(state.values)


def _state_store(state: DetectorState, detector: engine.Detector | discord.DiscordDetector) -> None:
    """The detector's arrays into its state row. The discord method's whole state, its recent values included,
    is `method_state` (`values` stays empty: written every batch, a copy would double the ~10 kB a sensor);
    the baseline method's is `values`, the values replayed after a restart."""
    if isinstance(detector, discord.DiscordDetector):
        state.values = b""
        state.method_state = array_to_bytes(detector.state_vector())
    else:
        state.values = array_to_bytes(detector.values)
        state.method_state = b""


def _remember(state: DetectorState, detector: engine.Detector | discord.DiscordDetector) -> None:
    _cache[state.sensor_id] = _Cached(state.version, state.baseline_id, state.window, detector)
    _cache.move_to_end(state.sensor_id)
    while len(_cache) > settings.DETECTION_CACHE_SENSORS:
        _cache.popitem(last=False)


def detector_cache_clear() -> None:
    """Forget the detectors kept in this process (tests; a worker rebuilds them from their stored state)."""
    _cache.clear()


class DetectionRow(NamedTuple):
    """One reading's detection as the batch writes, tracks and broadcasts it (the attributes of `Detection` that
    `_Tracker` and `broadcast.detection_payload` read), without a model instance per reading."""

    timestamp: datetime
    level: float | None
    distance: float | None
    status: str


def _feed(
    detector: engine.Detector | discord.DiscordDetector, values: list[float], timestamps: list[datetime]
) -> tuple[np.ndarray, np.ndarray]:
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
                if not _reusable(states[pk], configs[pk], baselines.get(chosen.get(pk)) if pk in chosen else None)
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
                detector = _detector(state, config, baseline)
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
            _state_store(state, detector)
            # A random version, not a counter: a reused sensor id (SQLite) can never match a stale cached one.
            state.version = secrets.randbits(62)
            _remember(state, detector)
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
            tracker = _Tracker(state=states[pk], config=configs[pk], key=keys[pk], events=events, touched=touched)
            for row in rows:
                tracker.track(row)
            result.anomalies_opened += tracker.opened
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
    columns = [column_of(Anomaly, name) for name in _Tracker.ANOMALY_FIELDS]
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


class _Tracker:
    """Anomalies and sensor events of one sensor, reading by reading.

    An anomaly gathers consecutive warning/critical readings; it closes after `ok_run` ok readings (hysteresis).
    A new alarm joins the last anomaly while that is still on, or within `cooldown_seconds` of its closing if
    operators have not resolved it. The sensor's state (ok, critical, not_available) changes, and an event is
    written, only when a critical reading arrives in another state, when a critical anomaly closes, or when a
    silent sensor sends again.
    """

    ANOMALY_FIELDS = ["ended_at", "closed_at", "peak_level", "peak_at", "peak_status", "flagged"]

    def __init__(
        self,
        *,
        state: DetectorState,
        config: DetectorSettings,
        key: str,
        events: list[tuple[str, SensorEvent]],
        touched: dict[int, Anomaly],
    ) -> None:
        self.state: DetectorState = state
        self.config: DetectorSettings = config
        self.key = key
        self.events: list[tuple[str, SensorEvent]] = events
        self.touched: dict[int, Anomaly] = touched  # by id(): a new anomaly has no pk before the batch is saved
        self.opened = 0

    def track(self, detection: DetectionLike) -> None:
        state, status = self.state, detection.status
        if status in FLAGGED:
            self._flagged(detection)
        elif status == Status.OK:
            anomaly = state.anomaly
            if anomaly is not None and anomaly.closed_at is None:
                state.ok_streak += 1
                if state.ok_streak >= self.config.ok_run:
                    anomaly.closed_at = detection.timestamp
                    self.touched[id(anomaly)] = anomaly
                    if state.state == SensorState.CRITICAL:
                        self._change(SensorState.OK, detection, "alarm over after {n} ok readings", anomaly)
        if state.state == SensorState.NOT_AVAILABLE:
            self._change(SensorState.OK, detection, "readings again", None)

    def _flagged(self, detection: DetectionLike) -> None:
        level = detection.level
        if level is None:  # a warning or critical status always comes with its level
            raise ValueError("a flagged detection without a level")
        state = self.state
        state.ok_streak = 0
        anomaly = state.anomaly
        if anomaly is None or not self._joins(anomaly, detection.timestamp):
            # Inserted with the batch's other new anomalies (`_anomalies_save`): no query per sensor.
            anomaly = Anomaly(
                sensor_id=state.sensor_id,
                started_at=detection.timestamp,
                ended_at=detection.timestamp,
                peak_level=level,
                peak_at=detection.timestamp,
                peak_status=detection.status,
                flagged=0,
            )
            state.anomaly = anomaly
            self.opened += 1
        anomaly.closed_at = None
        anomaly.ended_at = detection.timestamp
        anomaly.flagged += 1
        if level > anomaly.peak_level or anomaly.flagged == 1:
            anomaly.peak_level, anomaly.peak_at, anomaly.peak_status = (
                level,
                detection.timestamp,
                detection.status,
            )
        self.touched[id(anomaly)] = anomaly
        if detection.status == Status.CRITICAL and state.state != SensorState.CRITICAL:
            self._change(SensorState.CRITICAL, detection, "critical at level {level:.0f} %", anomaly)

    def _joins(self, anomaly: Anomaly, timestamp: datetime) -> bool:
        if anomaly.closed_at is None:
            return True
        if anomaly.status not in (Anomaly.State.OPEN, Anomaly.State.ACKNOWLEDGED):
            return False
        return timestamp - anomaly.closed_at <= timedelta(seconds=self.config.cooldown_seconds)

    def _change(self, to: str, detection: DetectionLike, message: str, anomaly: Anomaly | None) -> None:
        self.state.state = to
        text = message.format(level=detection.level or 0, n=self.config.ok_run)
        event = SensorEvent(
            sensor_id=self.state.sensor_id,
            kind=to,
            at=detection.timestamp,
            level=detection.level,
            anomaly=anomaly,
            message=f"{self.key}: {text}",
        )
        self.events.append((self.key, event))


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
                if state is None or state.state == SensorState.NOT_AVAILABLE:
                    continue
                state.state = SensorState.NOT_AVAILABLE  # the values (and a cached detector) stay valid
                events.append(
                    (
                        key,
                        SensorEvent(
                            sensor_id=pk,
                            kind=SensorEvent.Kind.NOT_AVAILABLE,
                            at=now,
                            message=f"{key}: no reading since {latest:%Y-%m-%d %H:%M:%S %Z}",
                        ),
                    )
                )
            sensor_events_store(events)
            _states_save([state for state in states.values()], fields=["state"])
            result.silent = len(events)
    behind = list(detector_states_behind().values_list("sensor_id", flat=True))
    if behind:
        result.swept = len(behind)
        result.detect = readings_detect(sensors=dict.fromkeys(behind))
    return result
