"""Detection quality on the labeled synthetic series: write them, sweep the settings, report (docs/detection.md,
"Quality").

    .venv/bin/python -m bench.detection_data OUTDIR                  # write the files (fixed seeds: same bytes)
    .venv/bin/python -m bench.detection_data OUTDIR --sweep          # tune on the `tune` files
    .venv/bin/python -m bench.detection_data OUTDIR --report [--window 144 --train-share 0.15 --warning 100]

The series (60 days of 10-minute readings, one normal profile, five planted anomalies of one kind; the profiles,
kinds and label windows) are made by `sensors.synthetic.labeled`. Every (profile, kind) is written twice with
different seeds: the `tune` set (used by --sweep to choose the settings) and the `test` set (held out: --report
gives the figures published in the docs). Files: `<set>-<profile>-<kind>.csv` (timestamp,value), `<same>.json`
(the [start, end] windows, as evaluate_detection reads them) and `manifest.json` (profile, kind, set and each
anomaly's parameters).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sensors.synthetic.labeled import DAYS, KINDS, PROFILES, SETS, at, series_make
from sensors.synthetic.signals import POINTS_PER_DAY


def files_write(outdir: Path) -> list[dict]:
    """Every labeled series of both sets as a CSV and its windows as JSON in `outdir`, and the manifest."""
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
    train = round(DAYS * POINTS_PER_DAY * train_share)
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
