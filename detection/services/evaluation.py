"""Measured detection quality: a labeled series through the production detector, scored per labeled window.

`detection_evaluate` is what `manage.py evaluate_detection` and the benchmark scripts call. Nothing here touches
the database: the detector is `engine.detector_for`, the one production builds its detectors with, fed one value
at a time exactly as the batch service feeds it (docs/detection.md, "Quality").

The scoring rules (they are also printed with every result):
- The first `train` points are the training part: cleaned (`engine.clean`, keeping 2m points), they are the
  baseline. The rest streams through the detector; its first m points are `undefined` (the newest window still
  holds baseline points), so scoring starts at point train + m.
- A window is found when a warning/critical reading falls inside it (ends included), and its first detection is
  the first such reading. Windows that end before scoring starts are listed but not scored.
- A flagged reading is attributed to a window when it falls inside it or within `tail` points after its last
  point (default m): the newest subsequence of m points still overlaps the anomaly for m points after it ended,
  so those flags are the anomaly's echo, not a new alarm. They do not make a window found.
- Every other flagged reading is a false alarm; consecutive ones (runs broken by fewer than `ok_run` unflagged
  readings, 1 by default: strictly contiguous) count once.
- precision = found / (found + false alarm runs), recall = found / scored windows,
  F1 = 2·found / (2·found + false alarm runs + missed windows); each is None when its denominator is 0.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from common.exceptions import ApplicationError
from detection import discord, engine
from detection import nab as nab_scoring
from detection.models import Method
from sensors.ingest import TimestampInvalid, naive_timezone, timestamp_parse

DEFAULT_TRAIN_SHARE = 0.15


# --- input --------------------------------------------------------------------------------------------------------


def _timestamp(raw: object, *, where: str) -> datetime:
    """An ISO 8601 timestamp read by the ingestion service's parser (a naive one in SENSORS_NAIVE_TIMEZONE)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ApplicationError(f"{where}: a timestamp must be an ISO 8601 string, not {raw!r}.")
    try:
        return timestamp_parse(raw, zone=naive_timezone())
    except TimestampInvalid as exc:
        raise ApplicationError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class Series:
    """A series as read from a file: `timestamps` (aware, UTC, strictly increasing) and their `values` (finite).

    What reading changed is kept, so that it is reported: `duplicates` rows were left out because an earlier row of
    the file had the same timestamp (the first row of each timestamp, in file order, is kept), and `unsorted` says
    the rows were not in time order (they were sorted). Gaps and an irregular cadence are kept as they are.

    It unpacks as `timestamps, values`, as `series_read_csv` returned before it reported anything.
    """

    timestamps: list[datetime]
    values: np.ndarray
    duplicates: int = 0
    unsorted: bool = False

    def __iter__(self) -> Iterator[Any]:  # unpacks as (timestamps, values)
        return iter((self.timestamps, self.values))

    @property
    def notes(self) -> list[str]:
        return input_notes(duplicates=self.duplicates, unsorted=self.unsorted)


def input_notes(*, duplicates: int, unsorted: bool) -> list[str]:
    """What reading a series changed, in words (the evaluation's notes, the command's output)."""
    notes = []
    if unsorted:
        notes.append("the rows were not in time order: sorted by timestamp")
    if duplicates:
        notes.append(
            f"{duplicates} row(s) repeated an earlier timestamp and were left out (the first row of each timestamp "
            "is kept)"
        )
    return notes


def series_from_rows(rows: Sequence[tuple[datetime, float]]) -> Series:
    """Rows in any order, sorted by time; of rows with the same timestamp the first in `rows` is kept and the
    others are counted in `duplicates`. `unsorted` says whether the kept rows came out of time order (a repeat
    further down is counted as a duplicate, not as disorder). The caller has checked that every timestamp is
    aware and every value finite."""
    first: dict[datetime, float] = {}
    for timestamp, value in rows:
        first.setdefault(timestamp, value)
    timestamps = list(first)  # the kept rows, in the order they came
    unsorted = any(after < before for before, after in zip(timestamps, timestamps[1:], strict=False))
    timestamps.sort()
    return Series(
        timestamps=timestamps,
        values=np.array([first[timestamp] for timestamp in timestamps], dtype=np.float64),
        duplicates=len(rows) - len(timestamps),
        unsorted=unsorted,
    )


def series_read_csv(path: str | Path) -> Series:
    """The `timestamp,value` rows of a CSV file (header required), sorted by time, one row per timestamp.

    Real files are taken as they come: rows in any order, repeated timestamps (the first row of each is kept, the
    rest counted), gaps, constant stretches, negative values, any scale. Raises `ApplicationError` with one line
    naming the file and row only for what cannot be used: a missing or empty file, a missing column, a bad
    timestamp, a value that is not a finite number, no rows.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                raise ApplicationError(f"{path} is empty.")
            columns = [name.strip().lower() for name in reader.fieldnames]
            if "timestamp" not in columns or "value" not in columns:
                raise ApplicationError(f"{path}: the header must name the columns timestamp and value.")
            reader.fieldnames = columns
            rows: list[tuple[datetime, float]] = []
            for row in reader:
                line = reader.line_num
                raw_ts, raw_value = row.get("timestamp"), row.get("value")
                if (raw_ts or "").strip() == "" and (raw_value or "").strip() == "":
                    continue  # a blank line
                timestamp = _timestamp(raw_ts, where=f"{path} line {line}")
                try:
                    value = float(raw_value or "")  # None (a short row) fails as "" does
                except (TypeError, ValueError):
                    raise ApplicationError(f"{path} line {line}: value {raw_value!r} is not a number.") from None
                if not math.isfinite(value):
                    raise ApplicationError(f"{path} line {line}: value {raw_value!r} is not a finite number.")
                rows.append((timestamp, value))
    except OSError as exc:
        raise ApplicationError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except UnicodeDecodeError as exc:
        raise ApplicationError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    except csv.Error as exc:
        raise ApplicationError(f"{path} is not a readable CSV file ({exc}).") from exc
    if not rows:
        raise ApplicationError(f"{path} holds no rows.")
    return series_from_rows(rows)


def windows_parse(data: object, *, source: str = "labels") -> list[tuple[datetime, datetime]]:
    """A JSON list of [start, end] timestamp pairs as aware datetimes, in the given order."""
    if not isinstance(data, list):
        raise ApplicationError(f"{source}: must be a JSON list of [start, end] pairs.")
    windows = []
    for number, pair in enumerate(data, start=1):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ApplicationError(f"{source}: window {number} must be a [start, end] pair, not {pair!r}.")
        start = _timestamp(pair[0], where=f"{source} window {number}")
        end = _timestamp(pair[1], where=f"{source} window {number}")
        if end < start:
            raise ApplicationError(f"{source}: window {number} ends before it starts.")
        windows.append((start, end))
    return windows


def windows_read_json(path: str | Path) -> list[tuple[datetime, datetime]]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ApplicationError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApplicationError(f"{path} is not valid JSON ({exc}).".replace("\n", " ")) from exc
    return windows_parse(data, source=str(path))


def windows_merge(windows: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted by start; overlapping (or touching) windows become one, so that one anomaly labeled twice is not
    counted twice."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# --- the detector run -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """The levels of one series through one detector: `levels[i]` belongs to point `train + i`."""

    train: int
    window: int
    baseline_points: int
    max_distance: float | None  # the baseline method's reference distance (None for the discord method)
    levels: np.ndarray  # NaN where undefined
    method: str = Method.BASELINE
    left_in: int = 0  # discords cleaning left in the training part to keep 2m points (engine.Cleaned.left_in)


def train_points(total: int, train: int | None) -> int:
    return math.ceil(total * DEFAULT_TRAIN_SHARE) if train is None else train


def default_window(method: str) -> int:
    """The window new sensors of this method start with (DETECTION_DISCORD_WINDOW or DETECTION_WINDOW)."""
    window: int = settings.DETECTION_DISCORD_WINDOW if method == Method.DISCORD else settings.DETECTION_WINDOW
    return window


def detector_run(
    values: np.ndarray,
    *,
    train: int,
    window: int,
    method: str = Method.BASELINE,
    timestamps: Sequence[datetime] | None = None,
) -> Run:
    """The production detector of `method` over a series, as the batch service feeds it. Thresholds do not change
    levels, so one run serves any warning/critical pair (the tuning sweep).

    - baseline: the first `train` points, cleaned, are the baseline; the rest goes through the detector one value
      at a time.
    - discord: no baseline; every point goes through the detector in order (with `timestamps`, for its gap rule),
      the first `train` are its history and are not scored, as a sensor's first readings would be.

    Raises `ApplicationError` when the series cannot make a baseline or leaves nothing to detect."""
    m = window
    if m < 4:
        raise ApplicationError(f"The window m must be at least 4, not {m}.")
    if method not in Method.values:
        raise ApplicationError(f"Unknown method {method!r}: one of {', '.join(Method.values)}.")
    if train < 1 or train >= len(values):
        raise ApplicationError(f"--train must be between 1 and {len(values) - 1} (the series has {len(values)}).")
    if len(values) - train <= m:
        raise ApplicationError(
            f"Only {len(values) - train} points follow the {train} training points: the detector needs more than "
            f"m={m} to give any level."
        )
    if method == Method.DISCORD:
        try:
            detector = discord.DiscordDetector(m, learning=settings.DETECTION_DISCORD_LEARNING)
        except ValueError as exc:
            raise ApplicationError(f"The discord detector cannot run: {exc}.") from exc
        epochs = None if timestamps is None else [ts.timestamp() for ts in timestamps]
        levels = detector.feed_arrays(values, epochs)[0][train:]
        return Run(train=train, window=m, baseline_points=0, max_distance=None, levels=levels, method=method)
    try:
        # As `build_baseline` builds a sensor's baseline: cleaned, its cuts recorded as joins.
        result = engine.clean(values[:train], m, rule=settings.DETECTION_CLEANING, keep=engine.min_baseline_points(m))
        cleaned = result.values
        stats = engine.baseline_stats(cleaned, m, result.joins)
    except engine.SeriesError as exc:
        raise ApplicationError(f"The training part cannot make a baseline: {exc}.") from exc
    streamed = engine.detector_for(cleaned, m, warning=math.inf, critical=math.inf, max_distance=stats["max_distance"])
    levels = np.array(
        [math.nan if v.level is None else v.level for v in streamed.feed_all(values[train:])], dtype=np.float64
    )
    return Run(
        train=train,
        window=m,
        baseline_points=len(cleaned),
        max_distance=stats["max_distance"],
        levels=levels,
        left_in=result.left_in,
    )


# --- scoring ----------------------------------------------------------------------------------------------------


@dataclass
class WindowResult:
    start: datetime
    end: datetime
    scored: bool
    found: bool = False
    first_detection: datetime | None = None
    peak_level: float | None = None
    flagged: int = 0  # flagged readings inside the window
    tail_flagged: int = 0  # flagged readings in the tail after it (attributed to it, not false alarms)
    note: str = ""

    @property
    def delay(self) -> timedelta | None:
        return None if self.first_detection is None else self.first_detection - self.start

    def as_dict(self) -> dict[str, Any]:
        delay = self.delay
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "found": self.found if self.scored else None,
            "first_detection": self.first_detection.isoformat() if self.first_detection else None,
            "delay_seconds": delay.total_seconds() if delay is not None else None,
            "scored": self.scored,
            "peak_level": self.peak_level,
            "flagged": self.flagged,
            "tail_flagged": self.tail_flagged,
            "note": self.note,
        }


@dataclass
class FalseAlarm:
    start: datetime
    end: datetime
    flagged: int
    peak_level: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "flagged": self.flagged,
            "peak_level": self.peak_level,
        }


@dataclass
class Evaluation:
    """The window-level score of one series with one set of thresholds."""

    points: int
    train: int
    baseline_points: int
    window: int
    warning: float
    critical: float
    tail: int
    ok_run: int
    scored_from: datetime
    windows: list[WindowResult]
    false_alarms: list[FalseAlarm]
    labels_given: int
    flagged: int = 0
    critical_readings: int = 0
    scored_points: int = 0
    notes: list[str] = field(default_factory=list)
    duplicates: int = 0  # rows of the file left out for repeating a timestamp (Series.duplicates)
    unsorted: bool = False  # the file's rows were not in time order (Series.unsorted)
    method: str = Method.BASELINE
    # One level per point of the series; NaN in the training part and where undefined.
    levels: np.ndarray = field(default_factory=lambda: np.empty(0))
    nab: dict[str, nab_scoring.FileScore] = field(default_factory=dict)  # by profile; empty if it cannot be scored

    def statuses(self) -> list[str]:
        """Each point's status as production would store it (`undefined` in the training part)."""
        return engine.statuses_of(self.levels, warning=self.warning, critical=self.critical)

    @property
    def found(self) -> int:
        return sum(w.found for w in self.windows if w.scored)

    @property
    def missed(self) -> int:
        return sum(not w.found for w in self.windows if w.scored)

    @property
    def precision(self) -> float | None:
        alarms = self.found + len(self.false_alarms)
        return self.found / alarms if alarms else None

    @property
    def recall(self) -> float | None:
        scored = self.found + self.missed
        return self.found / scored if scored else None

    @property
    def f1(self) -> float | None:
        denominator = 2 * self.found + len(self.false_alarms) + self.missed
        return 2 * self.found / denominator if denominator else None

    def as_dict(self) -> dict[str, Any]:
        standard = self.nab.get("standard")
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "method": self.method,
            "nab": {
                "standard": standard.score if standard else None,
                "null": standard.null if standard else None,
                "perfect": standard.perfect if standard else None,
                "normalized": _nab_normalized(standard),
                "profiles": {name: score.as_dict() for name, score in self.nab.items()},
            },
            "windows": [w.as_dict() for w in self.windows],
            "counts": {
                "windows_labeled": self.labels_given,
                "windows_scored": self.found + self.missed,
                "found": self.found,
                "missed": self.missed,
                "false_alarm_runs": len(self.false_alarms),
                "flagged_readings": self.flagged,
                "critical_readings": self.critical_readings,
            },
            "false_alarms": [alarm.as_dict() for alarm in self.false_alarms],
            "settings": {
                "points": self.points,
                "train": self.train,
                "baseline_points": self.baseline_points,
                "window": self.window,
                "warning": self.warning,
                "critical": self.critical,
                "scored_from": self.scored_from.isoformat(),
                "scored_points": self.scored_points,
            },
            "rules": {
                "tail_points": self.tail,
                "tail": (
                    f"flags up to {self.tail} points after a window's end belong to that window (the matrix "
                    "profile's echo of it): not false alarms, and they do not make the window found"
                ),
                "ok_run": self.ok_run,
                "false_alarm_run": (
                    "consecutive flagged readings outside every window and tail, broken by "
                    f"{self.ok_run} unflagged reading(s), count as one false alarm"
                ),
            },
            "input": {"duplicates": self.duplicates, "unsorted": self.unsorted},
            "notes": self.notes,
        }


def _nab_normalized(score: nab_scoring.FileScore | None) -> float | None:
    """This file's NAB score on the benchmark's normalized scale (never flagging 0, perfect 100)."""
    if score is None:
        return None
    return nab_scoring.nab_normalize([score])


def evaluation_score(
    *,
    timestamps: Sequence[datetime],
    run: Run,
    windows: Sequence[tuple[datetime, datetime]],
    warning: float,
    critical: float,
    tail: int | None = None,
    ok_run: int = 1,
) -> Evaluation:
    """Score one detector run against labeled windows with the given thresholds (the rules: module docstring).

    Guarantees: every labeled window (after merging overlaps) appears once in the result, in time order; a
    flagged reading is either inside or in the tail of some window, or part of exactly one false alarm run.
    """
    if not 0 < warning <= critical:
        raise ApplicationError("The warning level must be positive and at most the critical level.")
    if ok_run < 1:
        raise ApplicationError("ok_run must be at least 1.")
    m = run.window
    tail = m if tail is None else tail
    if tail < 0:
        raise ApplicationError("The tail must be 0 or more points.")
    stamps = list(timestamps[run.train :])
    levels = run.levels
    defined = ~np.isnan(levels)
    flagged = defined & (np.nan_to_num(levels, nan=0.0) >= warning)
    first_scored = int(np.argmax(defined)) if defined.any() else len(levels)
    scored_from = stamps[first_scored] if first_scored < len(stamps) else stamps[-1]
    merged = windows_merge(windows)
    notes = []
    if len(merged) < len(windows):
        notes.append(f"{len(windows) - len(merged)} overlapping label window(s) merged")

    attributed = np.zeros(len(levels), dtype=bool)
    results = []
    seconds = np.array([ts.timestamp() for ts in stamps], dtype=np.float64)
    for start, end in merged:
        lo = int(np.searchsorted(seconds, start.timestamp(), side="left"))
        hi = int(np.searchsorted(seconds, end.timestamp(), side="right"))  # exclusive
        result = WindowResult(start=start, end=end, scored=hi > first_scored)
        if end < stamps[0]:
            result.note = "inside the training part"
        elif not result.scored:
            result.note = f"ends within the first m={m} streamed points (levels undefined)"
        elif start < scored_from:
            result.note = "starts before scoring: scored on its part from scoring on"
        inside = np.flatnonzero(flagged[lo:hi]) + lo
        attributed[lo : min(len(levels), hi + tail)] = True
        if hi > lo and defined[lo:hi].any():
            result.peak_level = float(np.nanmax(levels[lo:hi]))
        result.flagged = len(inside)
        result.tail_flagged = int(flagged[hi : hi + tail].sum())
        if result.scored and len(inside):
            result.found = True
            result.first_detection = stamps[int(inside[0])]
        results.append(result)
    # Intervals of the tails may overlap a later window: that window is still scored on its own flags above.

    false_alarms: list[FalseAlarm] = []
    current: FalseAlarm | None = None
    quiet = 0
    for index in range(first_scored, len(levels)):
        if flagged[index] and not attributed[index]:
            if current is None:
                current = FalseAlarm(start=stamps[index], end=stamps[index], flagged=0, peak_level=0.0)
                false_alarms.append(current)
            current.end = stamps[index]
            current.flagged += 1
            current.peak_level = max(current.peak_level, float(levels[index]))
            quiet = 0
        elif current is not None:
            quiet += 1
            if attributed[index] or quiet >= ok_run:
                current, quiet = None, 0

    all_levels = np.full(len(timestamps), np.nan)
    all_levels[run.train :] = levels
    nab_scores: dict[str, nab_scoring.FileScore] = {}
    detections = np.zeros(len(timestamps), dtype=bool)
    detections[run.train :] = flagged
    try:
        for profile in nab_scoring.PROFILES:
            nab_scores[profile] = nab_scoring.nab_file_score(
                detections, windows=merged, timestamps=list(timestamps), profile=profile
            )
    except ValueError as exc:  # e.g. a labeled window that holds no row of the series
        notes.append(f"no NAB score: {exc}")
        nab_scores = {}
    return Evaluation(
        method=run.method,
        levels=all_levels,
        nab=nab_scores,
        points=len(timestamps),
        train=run.train,
        baseline_points=run.baseline_points,
        window=m,
        warning=warning,
        critical=critical,
        tail=tail,
        ok_run=ok_run,
        scored_from=scored_from,
        windows=results,
        false_alarms=false_alarms,
        labels_given=len(windows),
        flagged=int(flagged.sum()),
        critical_readings=int((defined & (np.nan_to_num(levels, nan=0.0) >= critical)).sum()),
        scored_points=len(levels) - first_scored,
        notes=notes,
    )


def detection_evaluate(
    *,
    timestamps: Sequence[datetime],
    values: np.ndarray,
    windows: Sequence[tuple[datetime, datetime]],
    method: str | None = None,
    train: int | None = None,
    window: int | None = None,
    warning: float | None = None,
    critical: float | None = None,
    tail: int | None = None,
    ok_run: int = 1,
    duplicates: int = 0,
    unsorted: bool = False,
) -> Evaluation:
    """Window F1 and the NAB score of one series over its labeled windows, with the production detector.

    Defaults: method DETECTION_METHOD, train = the first 15 % of the points, the method's window
    (`default_window`) and the levels from the DETECTION_* settings, tail = m, ok_run = 1 (false alarm runs
    strictly contiguous). Raises `ApplicationError` (one line) for unusable input. `duplicates` and `unsorted`
    (a `Series`' own) are reported in the result's `input` and notes.
    """
    if len(timestamps) != len(values):
        raise ApplicationError("timestamps and values differ in length.")
    method = settings.DETECTION_METHOD if method is None else method
    window = default_window(method) if window is None else window
    if len(values) < window:
        raise ApplicationError(f"The series has {len(values)} points, fewer than one window (m={window}).")
    warning = settings.DETECTION_WARNING_LEVEL if warning is None else warning
    critical = settings.DETECTION_CRITICAL_LEVEL if critical is None else critical
    if not 0 < warning <= critical:
        raise ApplicationError("The warning level must be positive and at most the critical level.")
    run = detector_run(
        np.asarray(values, dtype=np.float64),
        train=train_points(len(values), train),
        window=window,
        method=method,
        timestamps=timestamps,
    )
    evaluation = evaluation_score(
        timestamps=timestamps, run=run, windows=windows, warning=warning, critical=critical, tail=tail, ok_run=ok_run
    )
    evaluation.duplicates, evaluation.unsorted = duplicates, unsorted
    evaluation.notes[:0] = input_notes(duplicates=duplicates, unsorted=unsorted)
    if run.left_in:
        evaluation.notes.append(
            f"cleaning left {run.left_in} discord(s) above its accepted distance in the training part, to keep the "
            f"2m={2 * run.window} points a baseline needs (a longer --train lets it remove them)"
        )
    learning = settings.DETECTION_DISCORD_LEARNING
    if run.method == Method.DISCORD and learning > run.train:
        evaluation.notes.append(
            f"the discord detector learns from a sensor's first {learning} readings (DETECTION_DISCORD_LEARNING), "
            f"more than the {run.train} training points: no level before point {learning}"
        )
    if settings.DETECTION_CLEANING != "relative":
        evaluation.notes.append(f"cleaning rule {settings.DETECTION_CLEANING!r} (DETECTION_CLEANING)")
    return evaluation
