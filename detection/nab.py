"""The Numenta Anomaly Benchmark (NAB) score, and window F1, of per-row detections against labeled windows.

Pure functions: numpy in, numbers out; no database, no Django settings (the bench, the `evaluate_detection`
command and the tests call them alike). Written from NAB's published scoring rules (Lavin & Ahmad, "Evaluating
Real-time Anomaly Detection Algorithms - the Numenta Anomaly Benchmark", ICMLA 2015, and the NAB repository's
scorer at commit ea702d7); docs/detection.md, "NAB score", shows the per-file scores of two published detectors
reproduced exactly.

NAB's rules, as implemented here
--------------------------------
- **Detections.** A row is a detection when its anomaly score is at least the threshold (or when its flag is set).
- **Probationary part.** The first `min(floor(0.15 × rows), 0.15 × 5000)` rows (`nab_probation`): detections
  there are ignored; a detector may learn from them.
- **Windows.** Each labeled window `[start, end]` covers the rows from the first one at or after `start` to the
  row at `end`; when several rows share the `end` timestamp, the window ends at the first of them (NAB finds the
  right edge as the first row holding the end timestamp, and leaves the window there), otherwise at the last row
  before `end`. Windows are sorted by start, must hold at least one row each and must not overlap.
- **True positive.** In a window, only the first detection after the probationary part counts, weighted
  `tpWeight × S(p) / S(-1)` with `p = -(right - i + 1) / width` (row i, the window's last row `right`, its
  `width` rows): its first row gives `p = -1`, i.e. exactly tpWeight; its last row `p = -1 / width`, a little
  above 0. Later detections in the same window add nothing.
- **False positive.** Every detection after the probationary part outside all windows costs
  `fpWeight × S(p)` with `p = (i - right) / (width - 1)` measured from the previous window (S is negative for
  `p > 0`): right after a window it costs little, from `p = 3` on (three window lengths later) the full fpWeight.
  Without a window before it, `p` counts as 3: the full fpWeight. (For a previous window of one row NAB divides by
  zero; here `p = 2` then, as NAB's earlier scorer did.)
- **False negative.** Each window with a row after the probationary part and no detection in it costs fnWeight.
  A window that ends inside the probationary part is not scored at all (neither found nor missed), but it still
  is the "previous window" of the false positives after it.
- `S(p) = 2 / (1 + e^(5p)) - 1` (2·sigmoid(-5p) - 1), and `S(p) = -1` for `p >= 3`.
- **Profiles** (NAB's config/profiles.json): standard (tp 1.0, fp 0.11, fn 1.0), reward_low_FP_rate
  (tp 1.0, fp 0.22, fn 1.0), reward_low_FN_rate (tp 1.0, fp 0.11, fn 2.0).
- **Raw score** of a file = true-positive part + false-positive part - fnWeight × missed windows.
- **Normalized score** of a set of files = `100 × (Σ score - Σ null) / (Σ perfect - Σ null)`: null is the score of
  a detector that never flags (`-fnWeight` per scored window), perfect is `tpWeight` per labeled window (NAB counts
  every labeled window, so 100 is reachable only when no window ends inside the probationary part).

NAB also reports per-row counts (`RowCounts`, the TP/TN/FP/FN columns of its `*_scores.csv`): rows after the
probationary part, a detection inside a window being a TP row, outside an FP row; undetected rows FN or TN.

Window F1 (`window_f1`) is a simpler, gameable figure kept beside it for comparison; its rules are in its docstring.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

PROBATION_SHARE = 0.15
PROBATION_MAX_ROWS = 0.15 * 5000  # NAB caps the probationary part at 15 % of 5,000 rows (750)
FALSE_POSITIVE_FAR = 3.0  # a relative position from which S(p) is -1
WINDOW_F1_TRAIN_SHARE = 0.15
WINDOW_F1_TAIL = 144


@dataclass(frozen=True)
class Profile:
    """One of NAB's cost matrices: the weight of a true positive, a false positive and a missed window."""

    name: str
    tp: float
    fp: float
    fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True)
class RowCounts:
    """NAB's per-row counts after the probationary part (the TP/TN/FP/FN columns of its score files)."""

    tp: int
    tn: int
    fp: int
    fn: int

    @property
    def total(self) -> int:
        return self.tp + self.tn + self.fp + self.fn


@dataclass(frozen=True)
class FileScore:
    """The NAB score of one file under one profile.

    `windows` are the labeled windows as inclusive row ranges, in time order; `first_detections[k]` is the row of
    window k's counted detection (None when missed or not scored), `scored[k]` whether window k has a row after
    the probationary part. `detected` + `missed` = scored windows; `false_positives` counts rows.
    """

    profile: str
    score: float
    tp_score: float
    fp_score: float
    fn_score: float
    rows: int
    probation: int
    windows: tuple[tuple[int, int], ...]
    scored: tuple[bool, ...]
    first_detections: tuple[int | None, ...]
    detected: int
    missed: int
    false_positives: int
    row_counts: RowCounts
    null: float
    perfect: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "score": self.score,
            "tp_score": self.tp_score,
            "fp_score": self.fp_score,
            "fn_score": self.fn_score,
            "rows": self.rows,
            "probation": self.probation,
            "windows": [list(window) for window in self.windows],
            "scored": list(self.scored),
            "first_detections": list(self.first_detections),
            "detected": self.detected,
            "missed": self.missed,
            "false_positives": self.false_positives,
            "row_counts": {
                "tp": self.row_counts.tp,
                "tn": self.row_counts.tn,
                "fp": self.row_counts.fp,
                "fn": self.row_counts.fn,
            },
            "null": self.null,
            "perfect": self.perfect,
        }


# --- inputs ---------------------------------------------------------------------------------------------------------


def nab_profile(profile: str | Profile) -> Profile:
    """A profile by name (one of `PROFILES`), or the given one."""
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"Unknown NAB profile {profile!r}: one of {', '.join(PROFILES)}.") from None


def nab_probation(rows: int) -> int:
    """Rows at the start whose detections NAB ignores: `min(floor(0.15 × rows), 0.15 × 5000)`."""
    return int(min(math.floor(PROBATION_SHARE * rows), PROBATION_MAX_ROWS))


def nab_flags(scores: np.ndarray | Sequence[float], threshold: float) -> np.ndarray:
    """Detections: rows whose score is at least `threshold` (NaN is never a detection)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("Anomaly scores must be a one-dimensional array.")
    with np.errstate(invalid="ignore"):
        return values >= threshold


def _detections(detections: np.ndarray | Sequence[float], threshold: float | None) -> np.ndarray:
    if threshold is not None:
        return nab_flags(detections, threshold)
    flags = np.asarray(detections)
    if flags.ndim != 1:
        raise ValueError("Detections must be a one-dimensional array.")
    if flags.dtype != np.bool_:
        raise ValueError("Detections must be booleans; give a threshold to compare anomaly scores with it.")
    return flags


def _instants(items: Iterable[Any], *, what: str) -> tuple[np.ndarray, bool | None]:
    """Timestamps (ISO 8601 strings, datetimes or numpy datetime64) as datetime64[us], aware ones in UTC; and
    whether they were aware (None when there were none, or for datetime64)."""
    if isinstance(items, np.ndarray) and np.issubdtype(items.dtype, np.datetime64):
        return items.astype("datetime64[us]"), None
    converted = []
    aware: bool | None = None
    for raw in items:
        if isinstance(raw, np.datetime64):
            converted.append(raw.astype("datetime64[us]"))
            continue
        if isinstance(raw, str):
            try:
                moment = datetime.fromisoformat(raw.strip())
            except ValueError:
                raise ValueError(f"{what}: {raw[:40]!r} is not an ISO 8601 date and time.") from None
        elif isinstance(raw, datetime):
            moment = raw
        else:
            raise ValueError(f"{what}: {raw!r} is neither a timestamp string nor a datetime.")
        this_aware = moment.tzinfo is not None and moment.utcoffset() is not None
        if aware is not None and this_aware != aware:
            raise ValueError(f"{what}: naive and timezone-aware timestamps cannot be compared.")
        aware = this_aware
        if this_aware:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        converted.append(np.datetime64(moment, "us"))
    return np.array(converted, dtype="datetime64[us]"), aware


def _rows_checked(windows: Iterable[Sequence[int]], rows: int) -> list[tuple[int, int]]:
    """Row windows validated: inclusive [left, right] inside the file, sorted, not overlapping."""
    result: list[tuple[int, int]] = []
    for window in sorted((int(left), int(right)) for left, right in windows):
        left, right = window
        if not 0 <= left <= right < rows:
            raise ValueError(f"Window rows {window} are not an inclusive range inside the {rows} rows.")
        if result and left <= result[-1][1]:
            raise ValueError(f"Windows {result[-1]} and {window} overlap; merge them first.")
        result.append(window)
    return result


def _window_rows(
    timestamps: Sequence[Any] | np.ndarray, windows: Iterable[Sequence[Any]], *, nab_end: bool
) -> list[tuple[int, int]]:
    stamps, stamps_aware = _instants(timestamps, what="timestamps")
    if len(stamps) and np.any(stamps[1:] < stamps[:-1]):
        raise ValueError("Row timestamps must never decrease.")
    pairs = [tuple(window) for window in windows]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError("Each window must be a [start, end] pair.")
    bounds, bounds_aware = _instants([moment for pair in pairs for moment in pair], what="windows")
    if stamps_aware is not None and bounds_aware is not None and stamps_aware != bounds_aware:
        raise ValueError("Timestamps and windows must both be naive or both timezone-aware.")
    rows: list[tuple[int, int]] = []
    for k in range(len(pairs)):
        start, end = bounds[2 * k], bounds[2 * k + 1]
        if end < start:
            raise ValueError(f"Window {pairs[k]} ends before it starts.")
        left = int(np.searchsorted(stamps, start, side="left"))
        at_end = int(np.searchsorted(stamps, end, side="left"))
        if nab_end and at_end < len(stamps) and stamps[at_end] == end:
            right = at_end
        else:
            right = int(np.searchsorted(stamps, end, side="right")) - 1
        if right < left:
            raise ValueError(f"Window {pairs[k]} holds no row.")
        rows.append((left, right))
    return _rows_checked(rows, len(stamps))


def nab_window_rows(
    timestamps: Sequence[str | datetime] | np.ndarray, windows: Iterable[Sequence[str | datetime]]
) -> list[tuple[int, int]]:
    """Each [start, end] window as the inclusive row range NAB scores: from the first row at or after `start` to
    the first row at `end` (or, when no row is at `end`, the last one before it). Sorted by start.

    Timestamps and windows are ISO 8601 strings, datetimes or datetime64, all naive or all aware (aware ones are
    compared in UTC); row timestamps must never decrease. Raises ValueError for a window holding no row, windows
    that overlap, or a window ending before it starts."""
    return _window_rows(timestamps, windows, nab_end=True)


def _resolve_windows(
    rows: int, windows: Iterable[Sequence[Any]], timestamps: Sequence[Any] | np.ndarray | None, *, nab_end: bool
) -> list[tuple[int, int]]:
    if timestamps is None:
        return _rows_checked(windows, rows)
    if len(timestamps) != rows:
        raise ValueError(f"{len(timestamps)} timestamps for {rows} rows.")
    return _window_rows(timestamps, windows, nab_end=nab_end)


# --- the NAB score --------------------------------------------------------------------------------------------------


def scaled_sigmoid(position: float | np.ndarray) -> float | np.ndarray:
    """NAB's weight of a relative position: `2 / (1 + e^(5p)) - 1`, and -1 from p = 3 on.

    p = -1 (a window's first row) gives 0.9866, p = 0 (just past its last row) 0, p = 1 (one window length
    after it) -0.9866."""
    p = np.asarray(position, dtype=np.float64)
    with np.errstate(over="ignore"):
        value = np.where(p >= FALSE_POSITIVE_FAR, -1.0, 2.0 / (1.0 + np.exp(5.0 * p)) - 1.0)
    return float(value) if value.ndim == 0 else value


def nab_null_score(
    rows: int, windows: Iterable[Sequence[int]], profile: str | Profile = "standard", *, probation: int | None = None
) -> float:
    """The score of a detector that never flags: -fnWeight for each window (inclusive row range) with a row after
    the probationary part."""
    probation = nab_probation(rows) if probation is None else probation
    scored = sum(right >= probation for _, right in _rows_checked(windows, rows))
    return -nab_profile(profile).fn * scored


def nab_perfect_score(windows: int | Sequence[Any], profile: str | Profile = "standard") -> float:
    """NAB's perfect score: tpWeight for each labeled window (a count or the windows themselves), the score of a
    detector flagging exactly each window's first row when every window starts after the probationary part."""
    count = windows if isinstance(windows, int) else len(windows)
    return nab_profile(profile).tp * count


def nab_file_score(
    detections: np.ndarray | Sequence[float],
    *,
    windows: Iterable[Sequence[Any]],
    timestamps: Sequence[str | datetime] | np.ndarray | None = None,
    threshold: float | None = None,
    profile: str | Profile = "standard",
    probation: int | None = None,
) -> FileScore:
    """The NAB score of one file (rules: module docstring).

    `detections`: one boolean per row, or anomaly scores with `threshold` (a detection when score >= threshold).
    `windows`: [start, end] timestamp pairs matched to `timestamps` (`nab_window_rows`), or, without timestamps,
    inclusive [left, right] row ranges. `probation` defaults to NAB's (`nab_probation`).

    Guarantees: the raw score equals NAB's for the same rows, windows and detections (its per-file scores of the
    published numenta and contextOSE results are reproduced within 5e-16); `detected + missed` is the number of windows
    with a row after the probationary part; `null` and `perfect` are this file's shares of the normalization."""
    flags = _detections(detections, threshold)
    rows = len(flags)
    spans = _resolve_windows(rows, windows, timestamps, nab_end=True)
    weights = nab_profile(profile)
    probation = nab_probation(rows) if probation is None else int(probation)
    active = flags.copy()
    active[: max(0, probation)] = False

    in_window = np.zeros(rows, dtype=bool)
    best = float(scaled_sigmoid(-1.0))
    tp_score, fn_score = 0.0, 0.0
    first_detections: list[int | None] = []
    scored: list[bool] = []
    for left, right in spans:
        in_window[left : right + 1] = True
        width = right - left + 1
        is_scored = right >= probation
        scored.append(is_scored)
        hits = np.flatnonzero(active[left : right + 1])
        if not is_scored:
            first_detections.append(None)
        elif hits.size:
            first = left + int(hits[0])
            first_detections.append(first)
            tp_score += float(scaled_sigmoid(-(right - first + 1) / width)) * weights.tp / best
        else:
            first_detections.append(None)
            fn_score -= weights.fn

    false_rows = np.flatnonzero(active & ~in_window)
    fp_score = 0.0
    if false_rows.size:
        rights = np.array([right for _, right in spans], dtype=np.int64)
        widths = np.array([right - left + 1 for left, right in spans], dtype=np.int64)
        previous = np.searchsorted(rights, false_rows, side="left") - 1  # the last window ending before the row
        positions = np.full(false_rows.size, FALSE_POSITIVE_FAR)
        after = previous >= 0
        gaps = false_rows[after] - rights[previous[after]]
        spans_minus_one = widths[previous[after]] - 1
        positions[after] = np.where(spans_minus_one > 0, gaps / np.maximum(spans_minus_one, 1), 2.0)
        fp_score = float(np.sum(scaled_sigmoid(positions))) * weights.fp

    after_probation = np.zeros(rows, dtype=bool)
    after_probation[max(0, probation) :] = True
    counts = RowCounts(
        tp=int(np.sum(active & in_window)),
        tn=int(np.sum(after_probation & ~flags & ~in_window)),
        fp=int(false_rows.size),
        fn=int(np.sum(after_probation & ~flags & in_window)),
    )
    detected = sum(first is not None for first in first_detections)
    scored_count = sum(scored)
    return FileScore(
        profile=weights.name,
        score=tp_score + fp_score + fn_score,
        tp_score=tp_score,
        fp_score=fp_score,
        fn_score=fn_score,
        rows=rows,
        probation=probation,
        windows=tuple(spans),
        scored=tuple(scored),
        first_detections=tuple(first_detections),
        detected=detected,
        missed=scored_count - detected,
        false_positives=int(false_rows.size),
        row_counts=counts,
        null=-weights.fn * scored_count,
        perfect=nab_perfect_score(len(spans), weights),
    )


def nab_normalize(file_scores: Iterable[FileScore]) -> float | None:
    """NAB's normalized score of a set of files (one profile): `100 × (Σ score - Σ null) / (Σ perfect - Σ null)`,
    so that a detector that never flags scores 0 and a perfect one 100. None when the files hold no window
    (nothing to normalize by). Raises ValueError when the scores mix profiles."""
    scores = list(file_scores)
    if len({score.profile for score in scores}) > 1:
        raise ValueError("The file scores mix NAB profiles.")
    total = sum(score.score for score in scores)
    null = sum(score.null for score in scores)
    perfect = sum(score.perfect for score in scores)
    if perfect == null:
        return None
    return 100.0 * (total - null) / (perfect - null)


# --- window F1 ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowF1:
    """Window-level precision, recall and F1 of one file (rules: `window_f1`).

    `first_detections[k]` is the first flagged row inside window k (None when not found or not scored);
    `precision`, `recall` and `f1` are None when undefined (see `window_f1`)."""

    rows: int
    train: int
    tail: int
    windows: tuple[tuple[int, int], ...]
    scored: tuple[bool, ...]
    first_detections: tuple[int | None, ...]
    found: int
    scored_windows: int
    false_alarm_runs: int
    false_alarm_rows: int

    @property
    def precision(self) -> float | None:
        alarms = self.found + self.false_alarm_runs
        return self.found / alarms if alarms else None

    @property
    def recall(self) -> float | None:
        return self.found / self.scored_windows if self.scored_windows else None

    @property
    def f1(self) -> float | None:
        if not self.scored_windows:
            return None
        if not self.found:
            return 0.0
        precision = self.found / (self.found + self.false_alarm_runs)
        recall = self.found / self.scored_windows
        return 2 * precision * recall / (precision + recall)

    @property
    def delays(self) -> list[float]:
        """For each found window, the rows from its start to its first detection as a fraction of its length."""
        return [
            (first - left) / (right - left + 1)
            for (left, right), first in zip(self.windows, self.first_detections, strict=True)
            if first is not None
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "train": self.train,
            "tail": self.tail,
            "windows": [list(window) for window in self.windows],
            "scored": list(self.scored),
            "first_detections": list(self.first_detections),
            "found": self.found,
            "scored_windows": self.scored_windows,
            "false_alarm_runs": self.false_alarm_runs,
            "false_alarm_rows": self.false_alarm_rows,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def window_f1(
    flags: np.ndarray | Sequence[bool],
    *,
    windows: Iterable[Sequence[Any]],
    timestamps: Sequence[str | datetime] | np.ndarray | None = None,
    train: int | None = None,
    tail: int = WINDOW_F1_TAIL,
) -> WindowF1:
    """Window F1 of one file's flagged rows.

    Rules:
    - The training part is the first `train` rows (default `int(0.15 × rows)`): flags there are ignored, and
      windows that start there are not scored.
    - A window covers the rows with `start <= timestamp <= end` (or is given as an inclusive row range without
      timestamps). A scored window is found when at least one flagged row lies inside it.
    - Flagged rows within `tail` rows after a window's last row (default 144) belong to that window: neither a
      find nor a false alarm. Flagged rows inside an unscored window are not false alarms either.
    - Every other flagged row after the training part is a false alarm; a contiguous run of them counts once.
    - recall = found / scored windows; precision = found / (found + false-alarm runs); F1 = 2PR / (P + R), 0 when
      nothing is found, None (no F1) when the file has no scored window.
    """
    flagged = np.asarray(flags)
    if flagged.ndim != 1 or flagged.dtype != np.bool_:
        raise ValueError("Flags must be a one-dimensional boolean array.")
    rows = len(flagged)
    spans = _resolve_windows(rows, windows, timestamps, nab_end=False)
    train = int(WINDOW_F1_TRAIN_SHARE * rows) if train is None else int(train)
    if tail < 0:
        raise ValueError("The tail must be 0 or more rows.")
    active = flagged.copy()
    active[: max(0, train)] = False
    attributed = np.zeros(rows, dtype=bool)
    scored, first_detections = [], []
    for left, right in spans:
        attributed[left : right + 1 + tail] = True
        is_scored = left >= train
        scored.append(is_scored)
        hits = np.flatnonzero(active[left : right + 1])
        first_detections.append(left + int(hits[0]) if is_scored and hits.size else None)
    alarms = active & ~attributed
    starts = alarms & ~np.concatenate(([False], alarms[:-1]))
    return WindowF1(
        rows=rows,
        train=train,
        tail=tail,
        windows=tuple(spans),
        scored=tuple(scored),
        first_detections=tuple(first_detections),
        found=sum(first is not None for first in first_detections),
        scored_windows=sum(scored),
        false_alarm_runs=int(starts.sum()),
        false_alarm_rows=int(alarms.sum()),
    )
