"""The matrix-profile detector and the cleaning of series: numbers in, numbers out, no database.

Everything here works on plain float64 arrays, so that state is stored as arrays and any process rebuilds the
same detector from them (docs/detection.md). stumpy compiles its functions with numba at first call; `warm()`
does that once per process.
"""

from __future__ import annotations

import copy
import importlib
import math
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

import numpy as np
import stumpy
import stumpy.cache

# Cleaning (docs/detection.md, "Cleaning"): the top CLEAN_DISCORDS discords, judged against median +
# CLEAN_MAD_MULTIPLIER × MAD of their own distances, so against the series itself, whatever its unit and level.
CLEAN_DISCORDS = 15
CLEAN_MAD_MULTIPLIER = 5.0
# The leak service's absolute cut, in its data's units: discords above it were removed whatever the median and MAD.
# Values around 10,000 lost their whole series to it, so it applies only under the "legacy" rule (DETECTION_CLEANING).
LEGACY_CLEAN_CUT = 2000.0
CLEANING_RULES = ("relative", "legacy")
# When every top discord is at the median distance except a few (MAD 0: quantized readings), the spread is taken
# from the mean absolute deviation instead, scaled to the MAD of normal data (1.2533 σ / 1.4826 σ).
MEAN_DEVIATION_TO_MAD = 1.253314 / 1.4826
# Distances below this share of the series' largest magnitude (× √m) are rounding noise, not variation: far above
# float64's 1e-16, far below any sensor's resolution. It floors a constant baseline's max distance and the distance
# cleaning accepts.
NOISE_SHARE = 1e-9
# Levels are capped so that they stay finite numbers in JSON (a reading off a constant baseline: see noise_floor).
LEVEL_CAP = 1e9


class SeriesError(ValueError):
    """A series that cannot be used (too short, not finite, constant): the message says why, in one line."""


@dataclass(frozen=True)
class Verdict:
    """One reading's detection: level is None while the detector is not yet defined (status `undefined`)."""

    level: float | None
    distance: float | None
    status: str


def status_of(level: float | None, *, warning: float, critical: float) -> str:
    if level is None:
        return "undefined"
    if level >= critical:
        return "critical"
    if level >= warning:
        return "warning"
    return "ok"


def statuses_of(levels: np.ndarray, *, warning: float | np.ndarray, critical: float | np.ndarray) -> list[str]:
    """`status_of` of many levels at once (NaN: undefined); the thresholds may be one per level."""
    levels = np.asarray(levels, dtype=np.float64)
    statuses = np.full(len(levels), "undefined", dtype=object)
    defined = ~np.isnan(levels)
    statuses[defined & (levels < warning)] = "ok"
    statuses[defined & (levels >= warning)] = "warning"
    statuses[defined & (levels >= critical)] = "critical"
    return statuses.tolist()


def as_series(values: Iterable[float]) -> np.ndarray:
    series = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    if series.ndim != 1:
        raise SeriesError("a series is one-dimensional")
    if not np.all(np.isfinite(series)):
        raise SeriesError("a series holds only finite numbers")
    return series


def min_baseline_points(m: int) -> int:
    """A baseline needs two windows: below that its own matrix profile (hence its max distance) means little."""
    return 2 * m


def baseline_check(values: np.ndarray, m: int) -> None:
    if m < 4:
        raise SeriesError(f"the window m must be at least 4, not {m}")
    if len(values) < min_baseline_points(m):
        need = min_baseline_points(m)
        raise SeriesError(f"a baseline needs at least {need} points (2m) for m={m}, not {len(values)}")


def noise_floor(values: np.ndarray, m: int) -> float:
    """The smallest window distance of `values` that is not rounding noise: NOISE_SHARE × its largest magnitude
    × √m (the smallest positive float for a series of zeros, which has no magnitude at all)."""
    magnitude = float(np.max(np.abs(values))) if len(values) else 0.0
    return max(NOISE_SHARE * magnitude * math.sqrt(m), np.finfo(np.float64).tiny)


def baseline_stats(values: np.ndarray, m: int, joins: Iterable[int] = ()) -> dict[str, float]:
    """mean, variance and max distance: the largest finite value of its non-normalized matrix profile.

    `joins` are the indices where a series made of pieces starts a new piece (cleaning cuts stretches out,
    augmentation appends history): windows across a join mix two moments that never followed each other, so
    their distances are not normal behaviour and are left out of the max (unless every window crosses one).

    A baseline that never varies (a stuck sensor, a valve shut for the whole training part) is accepted: its max
    distance is `noise_floor`, so readings equal to it stay ok and any real change is critical (the level is
    capped at LEVEL_CAP). Its unit and level cannot set a tolerance, as a constant series has no spread.
    """
    values = as_series(values)
    baseline_check(values, m)
    profile = stumpy.aamp(values, m)[:, 0].astype(np.float64)
    usable = np.isfinite(profile)
    crossing = np.zeros(len(profile), dtype=bool)
    for join in joins:
        crossing[max(0, join - m + 1) : max(0, join)] = True  # windows [i, i + m) with i < join < i + m
    if np.any(usable & ~crossing):
        usable &= ~crossing
    max_distance = float(profile[usable].max()) if usable.any() else 0.0
    max_distance = max(max_distance, noise_floor(values, m))
    return {"mean": float(values.mean()), "variance": float(values.var()), "max_distance": max_distance}


class _Seeded:
    """An aampi object seeded with one baseline, built once per process and copied for each detector."""

    def __init__(self, baseline: np.ndarray, m: int, max_distance: float) -> None:
        self.m = m
        self.max_distance = max_distance
        self.points = len(baseline)
        self.stream = stumpy.aampi(baseline, m, egress=False)

    def fresh(self) -> stumpy.aampi:
        return copy.deepcopy(self.stream)


_seeded: dict[tuple[Hashable, int], _Seeded] = {}
_seeded_lock = threading.Lock()
SEEDED_CACHE = 64


def seeded(key: Hashable, m: int, load: Callable[[], tuple[np.ndarray, float]]) -> _Seeded:
    """The process's stream seeded with the baseline that `key` names; baselines never change, so a key names
    one series for good. `load()` gives the series and its max distance for window m (computed for m when it is
    not the baseline's own window: a stored max distance holds for that window only); it is called only when
    not cached."""
    with _seeded_lock:
        found = _seeded.get((key, m))
    if found is None:
        series, max_distance = load()
        found = _Seeded(as_series(series), m, max_distance)
        with _seeded_lock:
            if len(_seeded) >= SEEDED_CACHE:
                _seeded.pop(next(iter(_seeded)))
            _seeded[(key, m)] = found
    return found


@dataclass
class Detector:
    """One sensor's detector: the baseline's aampi stream, then the sensor's own values appended one by one.

    For each value: level = newest matrix-profile value / baseline max distance × 100. Defined once more than m
    of the sensor's own values are in the series (before that the newest window still holds baseline points).
    When the series holds 2m own values it restarts from the baseline and replays the last m (bounded memory).
    `values` (own values since the last restart) is the whole state: `Detector.resume` with the same baseline
    and values continues exactly as this object would have.
    """

    seed: _Seeded
    warning: float
    critical: float
    values: list[float] = field(default_factory=list)
    stream: stumpy.aampi | None = None

    @classmethod
    def resume(cls, seed: _Seeded, values: Iterable[float], *, warning: float, critical: float) -> Detector:
        detector = cls(seed=seed, warning=warning, critical=critical)
        detector._restart(list(map(float, values)))
        return detector

    @property
    def m(self) -> int:
        return self.seed.m

    def _restart(self, replay: list[float]) -> None:
        self.stream = self.seed.fresh()
        for value in replay:
            self.stream.update(value)
        self.values = replay

    def feed(self, value: float) -> Verdict:
        value = float(value)
        if not math.isfinite(value):
            raise SeriesError("a detector takes only finite values")
        stream = self.stream
        if stream is None:  # only `resume` builds detectors, and it starts the stream
            raise SeriesError("the detector has no stream: build it with Detector.resume")
        stream.update(value)
        self.values.append(value)
        distance = float(stream.P_[-1])
        level = None
        if len(self.values) > self.m:
            level = min(distance / self.seed.max_distance * 100.0, LEVEL_CAP) if math.isfinite(distance) else LEVEL_CAP
        if len(self.values) >= 2 * self.m:
            self._restart(self.values[-self.m :])
        return Verdict(
            level=level,
            distance=distance if math.isfinite(distance) else None,
            status=status_of(level, warning=self.warning, critical=self.critical),
        )

    def feed_all(self, values: Iterable[float]) -> list[Verdict]:
        return [self.feed(value) for value in values]


def detector_for(
    baseline: np.ndarray,
    m: int,
    *,
    warning: float,
    critical: float,
    max_distance: float | None = None,
    joins: Iterable[int] = (),
) -> Detector:
    """A fresh detector on `baseline`, outside any cache (evaluation, baseline selection, tests)."""
    baseline = as_series(baseline)
    if max_distance is None:
        max_distance = baseline_stats(baseline, m, joins)["max_distance"]
    return Detector.resume(_Seeded(baseline, m, max_distance), (), warning=warning, critical=critical)


# --- cleaning ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cleaned:
    values: np.ndarray
    removed: list[tuple[int, int]]  # [start, stop) index ranges of the input that were cut out
    discords: list[tuple[int, float]]  # (index, distance) of the top discords found
    accepted_distance: float  # discords above it were removed
    left_in: int = 0  # discords above it left in, since removing them would have left fewer than `keep` points

    @property
    def joins(self) -> list[int]:
        """Indices of `values` where a cut was made (the piece before and the one from here were not adjacent)."""
        joins, cut = [], 0
        total = len(self.values) + sum(stop - start for start, stop in self.removed)
        for start, stop in self.removed:
            if start > 0 and stop < total:
                joins.append(start - cut)
            cut += stop - start
        return joins


def top_discords(profile: np.ndarray, k: int, exclusion: int) -> list[tuple[int, float]]:
    """The k largest finite profile values, each at least `exclusion` indices away from those before it."""
    profile = profile.astype(np.float64).copy()
    profile[~np.isfinite(profile)] = -np.inf
    found: list[tuple[int, float]] = []
    for _ in range(k):
        index = int(np.argmax(profile))
        if profile[index] == -np.inf:
            break
        found.append((index, float(profile[index])))
        profile[max(0, index - exclusion) : index + exclusion + 1] = -np.inf
    return found


def clean(
    values: Iterable[float],
    m: int,
    *,
    discords: int = CLEAN_DISCORDS,
    cut: float | None = None,
    mad_multiplier: float = CLEAN_MAD_MULTIPLIER,
    rule: str = "relative",
    keep: int = 0,
) -> Cleaned:
    """Remove the abnormal stretches of a series (docs/detection.md, "Cleaning"), keeping the rest in order.

    The top `discords` discords of its non-normalized matrix profile (exclusion zone m/2) are found. Their
    distances are judged against each other: the accepted distance is median + `mad_multiplier` × MAD of those
    distances (the MAD taken from the mean absolute deviation when it is 0), and never below `noise_floor` (so
    rounding noise in a constant stretch is not a discord). Around each discord i above it, [i − m, i + 2m) is
    removed; the rest is joined. Multiplying a series by a positive factor and adding an offset removes the
    same stretches: nothing here is in the data's unit.

    `keep`: the points the caller cannot do without (a baseline needs 2m). Discords are then removed the most
    abnormal first, and one whose removal would leave fewer than `keep` points is left in (`left_in` counts them):
    a baseline with an abnormal stretch in it is less sensitive, but a series is not refused for holding many.

    `rule` "legacy" also caps the accepted distance at the leak service's LEGACY_CLEAN_CUT (in its data's unit);
    an explicit `cut` caps it under either rule.
    """
    if rule not in CLEANING_RULES:
        raise ValueError(f"the cleaning rule must be one of {', '.join(CLEANING_RULES)}, not {rule!r}")
    if cut is None and rule == "legacy":
        cut = LEGACY_CLEAN_CUT
    series = as_series(values)
    if m < 4:
        raise SeriesError(f"the window m must be at least 4, not {m}")
    if len(series) < m:
        raise SeriesError(f"cleaning needs at least m={m} points, got {len(series)}")
    if len(series) < m + 1 + math.ceil(m / 4):
        # Too short for a single pair of non-overlapping windows: there is no discord to find.
        return Cleaned(values=series, removed=[], discords=[], accepted_distance=math.inf)
    profile = stumpy.aamp(series, m)[:, 0]
    found = top_discords(profile, discords, exclusion=m // 2)
    accepted = max(discord_threshold([distance for _, distance in found], mad_multiplier), noise_floor(series, m))
    if cut is not None:
        accepted = min(accepted, cut)
    kept = np.ones(len(series), dtype=bool)
    removed: list[tuple[int, int]] = []
    left_in = 0
    for index, distance in found:  # the most abnormal first (top_discords' order)
        if distance <= accepted:
            continue
        start, stop = max(0, index - m), min(len(series), index + 2 * m)
        if np.count_nonzero(kept) - np.count_nonzero(kept[start:stop]) < keep:
            left_in += 1
            continue
        kept[start:stop] = False
        removed.append((start, stop))
    return Cleaned(
        values=series[kept], removed=_merge(removed), discords=found, accepted_distance=accepted, left_in=left_in
    )


def discord_threshold(distances: Iterable[float], mad_multiplier: float = CLEAN_MAD_MULTIPLIER) -> float:
    """median + `mad_multiplier` × MAD of the discords' distances. When more than half of them are equal (MAD 0,
    as quantized readings give), the MAD is estimated from the mean absolute deviation instead, which only the
    few unequal ones move; if every distance is equal, that is the median itself and none is above it."""
    distances = np.asarray(list(distances), dtype=np.float64)
    if not len(distances):
        return math.inf
    median = float(np.median(distances))
    deviations = np.abs(distances - median)
    spread = float(np.median(deviations))
    if spread == 0:
        spread = MEAN_DEVIATION_TO_MAD * float(deviations.mean())
    return median + mad_multiplier * spread


def crosses_join(position: int, m: int, joins: Iterable[int]) -> bool:
    """Whether the window of m values ending at `position` spans a join (mixes two pieces of a cleaned series)."""
    return any(position - m + 1 < join <= position for join in joins)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


_warm = False


def _enable_numba_cache() -> None:
    """Keep stumpy's compiled functions on disk (NUMBA_CACHE_DIR): a new process then loads them in about 2 s
    instead of compiling them for about 25 s. numba's own `enable_caching` on each of stumpy's njit functions;
    stumpy's `cache.save()` recompiles them and its `_enable()` is private (docs/detection.md, "Compilation")."""
    for module_name, function_name in stumpy.cache.get_njit_funcs():
        function = getattr(importlib.import_module(f"stumpy.{module_name}"), function_name)
        enable = getattr(function, "enable_caching", None)  # absent under NUMBA_DISABLE_JIT
        if enable is not None:
            enable()


def warm() -> None:
    """Compile (or load from the cache) stumpy's numba functions now, once per process, rather than at the first
    reading."""
    global _warm
    if _warm:
        return
    series = np.sin(np.arange(64) / 3.0)
    detector = detector_for(series, 8, warning=100, critical=200)
    detector.feed_all(series[:20])
    clean(series, 8)
    from detection import discord  # the discord method's compiled functions too

    discord.warm()
    _warm = True


_enable_numba_cache()
