"""The `discord` detection method: each new subsequence against the sensor's own recent past, no baseline.

For each reading, the newest subsequence of m values is compared with every subsequence of the sensor's recent
history (the last `history` values) that does not overlap it by more than half; its distance to the nearest one
(the left matrix profile's newest value, non-normalized) is the reading's score. A score is judged against the
sensor's own recent scores: level = score / the largest score of the last `reference` readings × 100. A reading
that repeats something the sensor did recently scores low; one unlike anything in its recent past scores high,
and "unlike anything before" means above the largest score of the recent past.

Why this shape (docs/detection.md, "Methods"): it needs no baseline, so a new sensor is judged against itself; it is
free of the data's units (distances and their reference scale together, and an offset cancels in differences);
it adapts, as a sustained new normal is found in the history after about 1.5 m readings and an old alarm's scores
leave the reference after `reference` readings; and its state is two bounded arrays.

Numbers in, numbers out: no database, no Django. `DiscordDetector.state()` returns the whole state as arrays,
and `DiscordDetector.resume(params, state)` continues exactly as the detector it came from would have.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

LEVEL_CAP = 1e9


@dataclass(frozen=True)
class DiscordParams:
    """m: values per subsequence; history: values searched for a neighbour; reference: scores the level's
    ratio part is relative to; gap: a pause longer than this many cadences starts a new segment (no subsequence
    spans one); short, long, z_unit, refractory: the level's drift part (`levels_of`)."""

    m: int = 16
    history: int = 1000
    reference: int = 500
    gap: float = 10.0
    short: int = 10
    long: int = 3000
    z_unit: float = 2.5
    refractory: int = 100

    def __post_init__(self) -> None:
        if self.m < 4:
            raise ValueError(f"the window m must be at least 4, not {self.m}")
        if self.history < 3 * self.m:
            raise ValueError(f"the history must hold at least 3m = {3 * self.m} values, not {self.history}")
        if self.reference < 1:
            raise ValueError("the reference must hold at least one score")

    @property
    def exclusion(self) -> int:
        """A neighbour must start at least m/2 values before the newest subsequence (no trivial match)."""
        return max(1, self.m // 2)

    @property
    def warmup(self) -> int:
        """Values from a first start before levels are defined: one subsequence and a neighbour outside the
        exclusion zone (m + m/2), then m scores to compare with. After a gap, only the first part."""
        return 2 * self.m + self.exclusion


@dataclass(frozen=True)
class DiscordVerdict:
    """One reading's result: score None while undefined (warm-up after a start or a gap), level None until the
    score has a reference to be judged against."""

    score: float | None
    level: float | None


def _kernel():
    """The numerical core, compiled by numba (cached on disk like stumpy's functions, engine.py)."""
    import numba

    @numba.njit(cache=True)
    def discord_scores(series, first, segment, m, history, excl):  # pragma: no cover (compiled)
        """Left matrix-profile values of the subsequences ending at series[first:], each against the
        subsequences that start within `history` values before it, at or after `segment`, and at least `excl`
        before it. NaN where there is no such neighbour. Early abandoning: a candidate stops once it is worse."""
        n = series.shape[0]
        out = np.full(n - first, np.nan)
        for end in range(first, n):
            start = end - m + 1
            if start < segment:
                continue
            lo = max(segment, start - history + m)
            hi = start - excl
            best = np.inf
            for j in range(lo, hi + 1):
                total = 0.0
                for k in range(m):
                    diff = series[j + k] - series[start + k]
                    total += diff * diff
                    if total >= best:
                        break
                if total < best:
                    best = total
            if best < np.inf:
                out[end - first] = math.sqrt(best)
        return out

    return discord_scores


_discord_scores = None


def discord_scores(series: np.ndarray, first: int, segment: int, params: DiscordParams) -> np.ndarray:
    global _discord_scores
    if _discord_scores is None:
        _discord_scores = _kernel()
    return _discord_scores(series, first, segment, params.m, params.history, params.exclusion)


def levels_of(
    scores: np.ndarray, reference: np.ndarray, stats: np.ndarray, params: DiscordParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each defined score's level, the larger of two parts (100 = the edge of normal):

    - ratio: score / the largest of the `reference` defined scores before it × 100. Above 100 the newest
      subsequence is further from anything recent than any subsequence of the recent past was: a new shape.
    - drift: the mean of the last `short` scores, as standard deviations above its long-run mean (weighted
      over about `long` readings), × 100 / `z_unit`. It catches a sustained change (noisier, or a pattern
      drifting) in which no single score is a record. After it alerts (≥ 120) it is muted for `refractory`
      readings: one alert per episode, not one per reading.

    `reference` holds the past scores, `stats` (long-run mean, variance, weight, muted readings left) the drift
    part's state; both are returned updated with the new scores. NaN scores stay undefined (NaN levels).
    """
    levels = np.full(len(scores), np.nan)
    window = list(reference[-params.reference :])
    mean, variance, weight, muted = (float(x) for x in stats) if len(stats) == 4 else (0.0, 0.0, 0.0, 0.0)
    alpha = 1.0 / params.long
    need = params.m  # a level needs m earlier scores: one alone says little about the sensor's normal
    peak = max(window) if window else -math.inf
    for index, score in enumerate(scores):
        if math.isnan(score):
            continue
        level = math.nan
        if len(window) >= need:
            level = min(score / peak * 100.0, LEVEL_CAP) if peak > 0 else 0.0 if score == 0 else LEVEL_CAP
        recent = window[-(params.short - 1) :] + [float(score)] if params.short > 1 else [float(score)]
        short_mean = sum(recent) / len(recent)
        if len(recent) == params.short:
            if weight >= params.short * 10 and variance > 0 and muted <= 0:
                drift = (short_mean - mean) / math.sqrt(variance) * 100.0 / params.z_unit
                if drift >= DRIFT_ALERT:
                    muted = params.refractory
                level = max(level, min(drift, LEVEL_CAP)) if not math.isnan(level) else level
            elif muted > 0:
                muted -= 1
            # Exponentially weighted mean and variance of the short means (West's incremental form).
            weight = min(weight + 1.0, 1.0 / alpha)
            rate = max(alpha, 1.0 / weight)
            delta = short_mean - mean
            mean += rate * delta
            variance = (1.0 - rate) * (variance + rate * delta * delta)
        window.append(float(score))
        if len(window) > params.reference:
            dropped = window.pop(0)
            peak = max(window) if dropped >= peak else max(peak, float(score))
        else:
            peak = max(peak, float(score))
        levels[index] = level
    return levels, np.asarray(window, dtype=np.float64), np.array([mean, variance, weight, muted])


DRIFT_ALERT = 120.0


CADENCE_INTERVALS = 32  # the cadence is the median of the last 32 steps between readings


class DiscordDetector:
    """One sensor's `discord` detector. `state()` is everything it knows, as four float64 arrays: `values`
    (the current segment's last `history` values), `scores` (the last `reference` defined scores), `times`
    (epoch seconds of the last readings, for the cadence and gaps) and `stats` (the drift part's four numbers)."""

    def __init__(self, params: DiscordParams, *, values=(), scores=(), times=(), stats=()) -> None:
        self.params = params
        self.values = np.asarray(values, dtype=np.float64)[-params.history :]
        self.scores = np.asarray(scores, dtype=np.float64)[-params.reference :]
        self.times = np.asarray(times, dtype=np.float64)[-(CADENCE_INTERVALS + 1) :]
        self.stats = np.asarray(stats, dtype=np.float64)
        # Thresholds on the level, set by whoever judges the verdicts (the detection service); not state.
        self.warning = DRIFT_ALERT
        self.critical = 200.0
        self.restarts = 0  # gaps seen by this object (not state: informative only)

    @classmethod
    def resume(cls, params: DiscordParams, state: dict[str, np.ndarray]) -> DiscordDetector:
        return cls(params, **state)

    STATE_PARTS = ("values", "scores", "times", "stats")

    def state_vector(self) -> np.ndarray:
        """The state as one float64 vector (how it is stored): the parts' lengths, then the parts in order."""
        parts = self.state()
        lengths = [len(parts[name]) for name in self.STATE_PARTS]
        return np.concatenate([np.asarray(lengths, dtype=np.float64), *(parts[name] for name in self.STATE_PARTS)])

    @classmethod
    def from_vector(cls, params: DiscordParams, vector: np.ndarray) -> DiscordDetector:
        """The detector `state_vector()` came from (an empty vector: a new detector)."""
        if len(vector) == 0:
            return cls(params)
        count = len(cls.STATE_PARTS)
        lengths = [int(length) for length in vector[:count]]
        parts, offset = {}, count
        for name, length in zip(cls.STATE_PARTS, lengths, strict=True):
            parts[name] = vector[offset : offset + length]
            offset += length
        return cls(params, **parts)

    def state(self) -> dict[str, np.ndarray]:
        return {
            "values": self.values.copy(),
            "scores": self.scores.copy(),
            "times": self.times.copy(),
            "stats": self.stats.copy(),
        }

    def cadence(self) -> float | None:
        """The usual step between readings (seconds), once at least 8 steps are known."""
        steps = np.diff(self.times)
        steps = steps[steps > 0]
        return float(np.median(steps)) if len(steps) >= 8 else None

    def feed(self, value: float, timestamp: float | None = None) -> DiscordVerdict:
        return self.feed_many([value], None if timestamp is None else [timestamp])[0]

    def feed_many(self, values: Iterable[float], timestamps: Iterable[float] | None = None) -> list[DiscordVerdict]:
        levels, scores = self.feed_arrays(values, timestamps)
        return [
            DiscordVerdict(
                score=None if math.isnan(score) else float(score), level=None if math.isnan(level) else float(level)
            )
            for score, level in zip(scores, levels, strict=True)
        ]

    def feed_arrays(
        self, values: Iterable[float], timestamps: Iterable[float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feed readings in time order (timestamps in epoch seconds, optional): (levels, scores), one each, NaN
        where undefined. A step longer
        than `gap` cadences starts a new segment: the history is dropped (no subsequence spans the pause) and
        the next readings are undefined until a subsequence and its neighbours fit in the new segment; the
        reference scores are kept (they describe this sensor's normal scores)."""
        new = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
        if not np.all(np.isfinite(new)):
            raise ValueError("a detector takes only finite values")
        stamps = None if timestamps is None else np.asarray(list(timestamps), dtype=np.float64)
        levels, scores = [], []
        start = 0
        while start < len(new):
            stop = len(new)
            if stamps is not None:
                stop, gap_at = self._until_gap(stamps, start)
                if gap_at:
                    self.values = self.values[:0]
                    self.restarts += 1
            segment_levels, segment_scores = self._feed_segment(new[start:stop])
            levels.append(segment_levels)
            scores.append(segment_scores)
            if stamps is not None:
                self.times = np.concatenate([self.times, stamps[start:stop]])[-(CADENCE_INTERVALS + 1) :]
            start = stop
        if not levels:
            return np.empty(0), np.empty(0)
        return np.concatenate(levels), np.concatenate(scores)

    def _until_gap(self, stamps: np.ndarray, start: int) -> tuple[int, bool]:
        """(end of the run from `start` without a gap, whether `start` itself follows a gap)."""
        times = list(self.times)
        gap_at_start = False
        for index in range(start, len(stamps)):
            cadence = _median_step(times)
            if times and cadence is not None and stamps[index] - times[-1] > self.params.gap * cadence:
                if index == start:
                    gap_at_start = True
                else:
                    return index, gap_at_start
            times.append(stamps[index])
            if len(times) > CADENCE_INTERVALS + 1:
                times.pop(0)
        return len(stamps), gap_at_start

    def _feed_segment(self, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        series = np.concatenate([self.values, new])
        first = len(self.values)
        scores = discord_scores(series, first, 0, self.params)
        levels, self.scores, self.stats = levels_of(scores, self.scores, self.stats, self.params)
        self.values = series[-self.params.history :]
        return levels, scores


def _median_step(times: list[float]) -> float | None:
    steps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    return float(np.median(steps)) if len(steps) >= 8 else None
