"""The detectors each worker process keeps ready in memory, and how one is (re)built from its `DetectorState`.

A worker keeps the detectors of the sensors it detected last (LRU, DETECTION_CACHE_SENSORS). The stored state's
`version` says whether the kept one is current: each batch stores a new random version with the detector's arrays
(`detector_keep`), so a detector fed by another worker, or by a batch that failed half-way, is never reused. One
that is not current is rebuilt from the baseline and the stored values (or the discord method's state vector),
with exactly the same results as an uninterrupted one.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from detection import discord, engine
from detection.models import Baseline, DetectorSettings, DetectorState, Method, array_from_bytes, array_to_bytes

AnyDetector = engine.Detector | discord.DiscordDetector


@dataclass
class _Cached:
    version: int
    baseline_id: int | None
    window: int
    detector: AnyDetector


_cache: OrderedDict[int, _Cached] = OrderedDict()


def baseline_seeded(meta: Baseline, m: int) -> engine._Seeded:
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


def detector_reusable(state: DetectorState, config: DetectorSettings, baseline: Baseline | None) -> bool:
    """Whether this worker's kept detector is current with `state` (then the stored arrays are not needed)."""
    wanted = _wanted(config, baseline)
    cached = _cache.get(state.sensor_id)
    return (
        (state.method, state.baseline_id, state.window) == wanted
        and cached is not None
        and (cached.version, cached.baseline_id, cached.window) == (state.version, wanted[1], wanted[2])
    )


def detector_take(state: DetectorState, config: DetectorSettings, baseline: Baseline | None) -> AnyDetector:
    """The sensor's detector, current with `state`, taken out of the cache to be fed (`detector_keep` puts it
    back). When its method, window or baseline changed it starts anew from the sensor's recent values (the
    baseline method replays the last m; the discord method takes them as its history). Updates
    `state.method`/`baseline`/`window` accordingly. A detector that is not kept needs the state's arrays."""
    method, baseline_id, m = _wanted(config, baseline)
    reuse = detector_reusable(state, config, baseline)
    same = (state.method, state.baseline_id, state.window) == (method, baseline_id, m)
    # Taken out of the cache while it is fed: if the batch fails half-way, no half-fed detector stays behind
    # under the version still stored. `detector_keep` puts it back with the new version.
    cached = _cache.pop(state.sensor_id, None)
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
        values = _recent_values(state) if not same else array_from_bytes(state.values)
        if not same:
            values = values[-m:]
        if baseline is None:  # the batch skips baseline-method sensors without a baseline before this
            raise ValueError("the baseline method needs a baseline")
        detector = engine.Detector.resume(baseline_seeded(baseline, m), values, warning=0, critical=0)
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


def detector_keep(state: DetectorState, detector: AnyDetector) -> None:
    """The fed detector back: its arrays into `state` (saved by the caller) under a new version, and into this
    process's cache under the same.

    The discord method's whole state, its recent values included, is `method_state` (`values` stays empty:
    written every batch, a copy would double the ~10 kB a sensor); the baseline method's is `values`, the values
    replayed after a restart."""
    if isinstance(detector, discord.DiscordDetector):
        state.values = b""
        state.method_state = array_to_bytes(detector.state_vector())
    else:
        state.values = array_to_bytes(detector.values)
        state.method_state = b""
    # A random version, not a counter: a reused sensor id (SQLite) can never match a stale cached one.
    state.version = secrets.randbits(62)
    _cache[state.sensor_id] = _Cached(state.version, state.baseline_id, state.window, detector)
    _cache.move_to_end(state.sensor_id)
    while len(_cache) > settings.DETECTION_CACHE_SENSORS:
        _cache.popitem(last=False)


def detector_cache_clear() -> None:
    """Forget the detectors kept in this process (tests; a worker rebuilds them from their stored state)."""
    _cache.clear()
