"""Labeled series for measuring detection quality, and the sweep and report over them (docs/detection.md, "Quality").

    .venv/bin/python -m bench.detection_data OUTDIR                  # write the files (fixed seeds: same bytes)
    .venv/bin/python -m bench.detection_data OUTDIR --sweep          # tune on the `tune` files
    .venv/bin/python -m bench.detection_data OUTDIR --report [--window 144 --train-share 0.15 --warning 100]

Each file is 60 days of 10-minute readings of one normal profile with five planted anomalies of one kind:

- profiles: `low`, `mid`, `high` variance (about the seed baselines' stats: low (24, 115), mid (34, 743),
  high (38, 1809)): a daily cycle with a morning and an evening peak, quieter weekends, Gaussian noise;
- kinds: `leak` (a ramp up over 3-24 h, held 6-24 h, then repaired), `spike` (1-3 readings far off),
  `level_shift` (a step up or down held 1-3 days), `drift` (a linear drift over 2-4 days, then recalibrated),
  `seasonal` (the daily cycle's amplitude scaled ×0.3-0.5 or ×1.6-2.0, or its phase moved 3-6 h, for 2-3 days).

Each label window is the whole altered stretch (from the first altered reading to the last one). Anomalies start
on days 17, 25, 33, 41 and 49 plus a few hours, so that none falls into the training part (at most 25 % = 15
days) or the first m undefined points (m at most 2 days), and the tail of one never reaches the next.

Every (profile, kind) is written twice with different seeds: the `tune` set (used by --sweep to choose the
settings) and the `test` set (held out: --report gives the figures published in the docs). Files:
`<set>-<profile>-<kind>.csv` (timestamp,value), `<same>.json` (the [start, end] windows, as evaluate_detection
reads them) and `manifest.json` (profile, kind, set and each anomaly's parameters).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
STEP = timedelta(minutes=10)
DAY = 144
DAYS = 60
ANOMALY_DAYS = (17, 25, 33, 41, 49)
SETS = {"tune": 1000, "test": 2000}  # base seeds
PROFILES = {
    # mean, daily amplitude, noise standard deviation
    "low": (24.0, 17.0, 3.0),
    "mid": (34.0, 43.0, 8.0),
    "high": (38.0, 65.0, 16.0),
}
KINDS = ("leak", "spike", "level_shift", "drift", "seasonal")


def daily_shape(t: np.ndarray, phase: float = 0.0) -> np.ndarray:
    """A day with a morning and an evening peak, amplitude about 1 (t in points, phase in points)."""
    x = 2 * np.pi * (t - phase) / DAY
    return 0.8 * np.sin(x - 2.0) + 0.45 * np.sin(2 * x - 0.5)


def normal_parts(profile: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(level, daily factor, noise) of a profile's 60 days; value = level + factor × shape + noise."""
    mean, amplitude, noise = PROFILES[profile]
    n = DAYS * DAY
    t = np.arange(n)
    weekday = (t // DAY) % 7
    weekend = weekday >= 5
    factor = np.where(weekend, 0.7 * amplitude, amplitude)
    level = np.where(weekend, mean - 0.15 * amplitude, mean)
    return level.astype(float), factor.astype(float), rng.normal(0, noise, n), amplitude


def plant(kind: str, values: np.ndarray, factor: np.ndarray, amplitude: float, noise: float, rng, start: int):
    """Alter `values` in place from index `start`; returns (first, last) altered index and the parameters."""
    t = np.arange(len(values))
    if kind == "leak":
        ramp, hold = int(rng.integers(18, 145)), int(rng.integers(36, 145))
        height = float(rng.uniform(0.25, 0.8) * amplitude)
        values[start : start + ramp] += np.linspace(0, height, ramp, endpoint=False)
        values[start + ramp : start + ramp + hold] += height
        return (start, start + ramp + hold - 1), {"ramp_points": ramp, "hold_points": hold, "height": height}
    if kind == "spike":
        width = int(rng.integers(1, 4))
        size = float(rng.uniform(4, 10) * noise + rng.uniform(0.5, 1.5) * amplitude) * rng.choice([-1, 1])
        values[start : start + width] += size
        return (start, start + width - 1), {"width_points": width, "size": size}
    if kind == "level_shift":
        length = int(rng.integers(DAY, 3 * DAY + 1))
        step = float(rng.uniform(0.25, 0.7) * amplitude) * rng.choice([-1, 1])
        values[start : start + length] += step
        return (start, start + length - 1), {"length_points": length, "step": step}
    if kind == "drift":
        length = int(rng.integers(2 * DAY, 4 * DAY + 1))
        reach = float(rng.uniform(0.3, 0.9) * amplitude) * rng.choice([-1, 1])
        values[start : start + length] += np.linspace(0, reach, length)
        return (start, start + length - 1), {"length_points": length, "reach": reach}
    if kind == "seasonal":
        length = int(rng.integers(2 * DAY, 3 * DAY + 1))
        span = slice(start, start + length)
        change = rng.choice(["amplitude", "phase"])
        if change == "amplitude":
            scale = float(rng.choice([rng.uniform(0.3, 0.5), rng.uniform(1.6, 2.0)]))
            values[span] += (scale - 1) * factor[span] * daily_shape(t[span])
            return (start, start + length - 1), {"length_points": length, "amplitude_scale": scale}
        shift = int(rng.integers(18, 37))
        values[span] += factor[span] * (daily_shape(t[span], phase=shift) - daily_shape(t[span]))
        return (start, start + length - 1), {"length_points": length, "phase_shift_points": shift}
    raise ValueError(kind)


def series_make(set_name: str, profile: str, kind: str) -> tuple[np.ndarray, list[dict]]:
    seed = SETS[set_name] + 10 * list(PROFILES).index(profile) + KINDS.index(kind)
    rng = np.random.default_rng(seed)
    level, factor, noise_values, amplitude = normal_parts(profile, rng)
    t = np.arange(DAYS * DAY)
    values = level + factor * daily_shape(t) + noise_values
    anomalies = []
    for day in ANOMALY_DAYS:
        start = day * DAY + int(rng.integers(36, 108))  # between 06:00 and 18:00
        (first, last), params = plant(kind, values, factor, amplitude, PROFILES[profile][2], rng, start)
        anomalies.append({"kind": kind, "first": first, "last": last, **params})
    return values, anomalies


def at(index: int) -> datetime:
    return START + index * STEP


def files_write(outdir: Path) -> list[dict]:
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = []
    for set_name in SETS:
        for profile in PROFILES:
            for kind in KINDS:
                values, anomalies = series_make(set_name, profile, kind)
                name = f"{set_name}-{profile}-{kind}"
                with (outdir / f"{name}.csv").open("w") as handle:
                    handle.write("timestamp,value\n")
                    for index, value in enumerate(values):
                        handle.write(f"{at(index).isoformat()},{value:.4f}\n")
                windows = [[at(a["first"]).isoformat(), at(a["last"]).isoformat()] for a in anomalies]
                (outdir / f"{name}.json").write_text(json.dumps(windows, indent=1) + "\n")
                manifest.append(
                    {"name": name, "set": set_name, "profile": profile, "kind": kind, "anomalies": anomalies}
                )
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


# --- evaluation over the files ------------------------------------------------------------------------------------


def _django() -> None:
    # The settings set NUMBA_CACHE_DIR before stumpy is imported (the compiled functions are then loaded, not built).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _run(job: tuple[str, str, int, int | None]):
    """One file through the detector (in a worker process): its timestamps, windows and levels."""
    _django()
    from common.exceptions import ApplicationError
    from detection.services.evaluation import detector_run, series_read_csv, train_points, windows_read_json

    outdir, name, window, train = job
    timestamps, values = series_read_csv(Path(outdir) / f"{name}.csv")
    windows = windows_read_json(Path(outdir) / f"{name}.json")
    try:
        run = detector_run(values, train=train_points(len(values), train), window=window)
    except ApplicationError as exc:
        # A setting that cannot make a baseline from some file (cleaning cut too much) is reported, not hidden.
        print(f"  {name}: {exc.detail}", flush=True)
        return name, timestamps, windows, None
    return name, timestamps, windows, run


def runs(outdir: Path, names: list[str], *, window: int, train_share: float, workers: int):
    train = round(DAYS * DAY * train_share)
    jobs = [(str(outdir), name, window, train) for name in names]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_run, jobs))


def score_all(results, *, warning: float, ok_run: int = 1, tail: int | None = None):
    from detection.services.evaluation import evaluation_score

    return {
        name: evaluation_score(
            timestamps=timestamps,
            run=run,
            windows=windows,
            warning=warning,
            critical=max(warning, 2 * warning),
            tail=tail,
            ok_run=ok_run,
        )
        for name, timestamps, windows, run in results
        if run is not None
    }


def totals(evaluations) -> dict:
    found = sum(e.found for e in evaluations)
    missed = sum(e.missed for e in evaluations)
    false = sum(len(e.false_alarms) for e in evaluations)
    delays = [w.delay.total_seconds() / 3600 for e in evaluations for w in e.windows if w.delay is not None]
    return {
        "windows": found + missed,
        "found": found,
        "false": false,
        "precision": found / (found + false) if found + false else None,
        "recall": found / (found + missed) if found + missed else None,
        "f1": 2 * found / (2 * found + false + missed) if found + missed + false else None,
        "median_delay_h": statistics.median(delays) if delays else None,
    }


def _fmt(value, spec=".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def sweep(outdir: Path, manifest: list[dict], *, workers: int) -> None:
    names = [entry["name"] for entry in manifest if entry["set"] == "tune"]
    warnings = (100, 105, 110, 115, 120, 130, 140, 150, 175, 200)
    print(
        "tune set:", len(names), "files,", sum(len(e["anomalies"]) for e in manifest if e["set"] == "tune"), "windows"
    )
    print(f"{'m':>4} {'train':>6} {'warning':>8} {'ok_run':>6} {'P':>5} {'R':>5} {'F1':>5} {'false':>6} {'delay h':>8}")
    best = None
    for window in (72, 144, 288):
        for train_share in (0.10, 0.15, 0.25):
            started = time.monotonic()
            results = runs(outdir, names, window=window, train_share=train_share, workers=workers)
            failed = sum(run is None for *_, run in results)
            if failed:
                print(f"{window:>4} {train_share:>6.2f}  no baseline for {failed} of {len(results)} files: excluded")
                continue
            for warning in warnings:
                for ok_run in (1, 6):
                    t = totals(score_all(results, warning=warning, ok_run=ok_run).values())
                    print(
                        f"{window:>4} {train_share:>6.2f} {warning:>8} {ok_run:>6} {_fmt(t['precision']):>5} "
                        f"{_fmt(t['recall']):>5} {_fmt(t['f1']):>5} {t['false']:>6} "
                        f"{_fmt(t['median_delay_h'], '.1f'):>8}"
                    )
                    key = (t["f1"] or 0, -(window), ok_run == 1)
                    if best is None or key > best[0]:
                        best = (key, window, train_share, warning, ok_run, t)
            print(f"  ({time.monotonic() - started:.0f} s for m={window}, train {train_share:.0%})", flush=True)
    _, window, train_share, warning, ok_run, t = best
    print(
        f"best on the tune set: m={window}, train {train_share:.0%}, warning {warning}, ok_run {ok_run}: "
        f"F1 {_fmt(t['f1'])} (P {_fmt(t['precision'])}, R {_fmt(t['recall'])})"
    )


def report(
    outdir: Path,
    manifest: list[dict],
    *,
    set_name: str,
    window: int,
    train_share: float,
    warning: float,
    workers: int,
    tail: int | None = None,
) -> None:
    chosen = [entry for entry in manifest if entry["set"] == set_name]
    results = runs(outdir, [e["name"] for e in chosen], window=window, train_share=train_share, workers=workers)
    if any(run is None for *_, run in results):
        sys.exit("some files cannot make a baseline with these settings (above)")
    for ok_run in (1, 6):
        evaluations = score_all(results, warning=warning, ok_run=ok_run, tail=tail)
        tail_text = "m" if tail is None else f"{tail} points"
        print(
            f"\n{set_name} set: m={window}, train {train_share:.0%}, warning {warning}, ok_run {ok_run}, "
            f"tail {tail_text}"
        )
        print(f"| {'kind':<12} | windows | found | false alarms | precision | recall | F1 | median first detection |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for group in (*KINDS, *PROFILES, "all"):
            members = [evaluations[e["name"]] for e in chosen if group in (e["kind"], e["profile"], "all")]
            t = totals(members)
            delay = "n/a" if t["median_delay_h"] is None else f"{t['median_delay_h']:.1f} h"
            print(
                f"| {group:<12} | {t['windows']} | {t['found']} | {t['false']} | {_fmt(t['precision'])} | "
                f"{_fmt(t['recall'])} | {_fmt(t['f1'])} | {delay} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--sweep", action="store_true", help="sweep m, training share, warning and ok_run (tune set)")
    parser.add_argument("--report", action="store_true", help="per-kind figures with one setting")
    parser.add_argument("--set", default="test", choices=list(SETS), help="files the report covers (default test)")
    parser.add_argument("--window", type=int, default=144)
    parser.add_argument("--train-share", type=float, default=0.15)
    parser.add_argument("--warning", type=float, default=100.0)
    parser.add_argument("--tail", type=int, help="points after a window whose flags belong to it (default m)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not (args.sweep or args.report):
        manifest = files_write(args.outdir)
        print(f"wrote {len(manifest)} series and their labels to {args.outdir}")
        return
    _django()
    manifest_path = args.outdir / "manifest.json"
    if not manifest_path.exists():
        sys.exit(f"{manifest_path} is missing: write the files first (python -m bench.detection_data {args.outdir}).")
    manifest = json.loads(manifest_path.read_text())
    if args.sweep:
        sweep(args.outdir, manifest, workers=args.workers)
    if args.report:
        report(
            args.outdir,
            manifest,
            set_name=args.set,
            window=args.window,
            train_share=args.train_share,
            warning=args.warning,
            workers=args.workers,
            tail=args.tail,
        )


if __name__ == "__main__":
    main()
