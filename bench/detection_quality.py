"""Detection quality on labeled series in NAB's layout: the NAB score and window F1 (docs/detection.md, "NAB score").

    .venv/bin/python -m bench.detection_quality DIR --results RESULTS_DIR --threshold T [--detector NAME]
        [--profile-threshold PROFILE=T ...] [--json]         # score a published detector's NAB results
    .venv/bin/python -m bench.detection_quality DIR [--method M] [--window m] [--json]   # Sensorhub's detector

DIR holds `<category>/<name>.csv` (timestamp,value) with `<category>/<name>.labels.json` beside it (a JSON list of
[start, end] windows, ends included); every CSV with such a sibling is scored, in subfolders too, others are left
alone.

- `--results`: NAB's result format, `RESULTS_DIR/<category>/<detector>_<name>.csv` with one `anomaly_score` per row
  of the data file (matched by position; the timestamps must be the data file's). A row is a detection when its
  score is at least the threshold (`--threshold` for every profile, `--profile-threshold` overrides one: NAB's
  published thresholds differ by profile). When `RESULTS_DIR/<detector>_<profile>_scores.csv` exists (NAB's
  per-file raw scores) each file's raw score and row counts are compared with it.
- Without `--results`: Sensorhub's detector (`_detector_flags`) runs over each file; a row is flagged when its
  level is at least DETECTION_WARNING_LEVEL. The first rows (NAB's probationary part) are its training part, the
  m rows after them have no level. A file the detector refuses (unreadable, repeated timestamps, a training part
  that cannot make a baseline) is reported with the reason and left out; the totals are given over the scored
  files, and over all files with the refused ones counted as never flagging.

Both modes print per file and overall: NAB's raw score for its three profiles and the normalized totals (a detector
that never flags scores 0, a perfect one 100; `detection.nab`), window F1 (`detection.nab.window_f1`: training part
int(0.15 × rows), found windows, a 144-row tail after each window, false-alarm runs), windows found/scored,
false-alarm runs on files with and without windows, and the median delay of first detection as a fraction of the
window's length. `--json` prints one object instead; progress goes to stderr. Detector mode sets up Django
(DJANGO_SETTINGS_MODULE defaults to config.settings.dev) and uses no database.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detection.nab import (
    PROFILES,
    FileScore,
    WindowF1,
    nab_file_score,
    nab_flags,
    nab_normalize,
    nab_probation,
    window_f1,
)

SHORT = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}


class Refused(Exception):
    """A file that cannot be scored; the message says why in one line."""


@dataclass
class FileResult:
    """One labeled file: its NAB scores by profile and its window F1, or why it was refused."""

    name: str  # relative to DIR, e.g. realTraffic/speed_t4013.csv
    category: str
    windows: int
    nab: dict[str, FileScore] = field(default_factory=dict)
    f1: WindowF1 | None = None
    references: dict[str, dict] = field(default_factory=dict)  # profile -> NAB's row of its scores file
    refused: str | None = None
    seconds: float = 0.0

    def match(self, profile: str) -> bool | None:
        """Whether the raw score and row counts equal NAB's (None when there is no reference)."""
        reference = self.references.get(profile)
        if reference is None or profile not in self.nab:
            return None
        ours = self.nab[profile]
        counts = ours.row_counts
        return math.isclose(ours.score, float(reference["Score"]), rel_tol=1e-9, abs_tol=1e-9) and (
            counts.tp,
            counts.tn,
            counts.fp,
            counts.fn,
        ) == tuple(int(reference[key]) for key in ("TP", "TN", "FP", "FN"))

    def as_dict(self) -> dict:
        entry: dict = {"file": self.name, "category": self.category, "windows": self.windows}
        if self.refused is not None:
            entry["refused"] = self.refused
        if self.nab:
            entry["nab"] = {profile: score.as_dict() for profile, score in self.nab.items()}
            for profile, reference in self.references.items():
                entry["nab"][profile]["reference"] = {
                    "score": float(reference["Score"]),
                    "threshold": float(reference["Threshold"]),
                    "match": self.match(profile),
                }
        if self.f1 is not None:
            entry["window_f1"] = self.f1.as_dict()
            delays = self.f1.delays
            entry["median_delay"] = statistics.median(delays) if delays else None
        return entry


# --- input ----------------------------------------------------------------------------------------------------------


def labeled_files(root: Path) -> list[Path]:
    """Every `*.csv` under `root` with a `<name>.labels.json` beside it, sorted by relative path."""
    return sorted(path for path in root.rglob("*.csv") if path.with_suffix(".labels.json").is_file())


def _labels(path: Path) -> list:
    try:
        windows = json.loads(path.with_suffix(".labels.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Refused(f"labels unreadable: {exc}") from exc
    if not isinstance(windows, list):
        raise Refused("labels are not a JSON list of [start, end] windows")
    return windows


def _columns(path: Path, *names: str) -> list[list[str]]:
    """The named columns of a CSV file with a header, as strings."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [name for name in names if name not in (reader.fieldnames or [])]
            if missing:
                raise Refused(f"{path.name} has no column {', '.join(missing)}")
            rows = [row for row in reader if any(row.values())]
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror or exc}") from exc
    return [[row[name] for row in rows] for name in names]


def _reference_scores(results: Path, detector: str) -> dict[str, dict[str, dict]]:
    """NAB's per-file raw scores by profile and file (`<detector>_<profile>_scores.csv`), those that exist."""
    references: dict[str, dict[str, dict]] = {}
    for profile in PROFILES:
        path = results / f"{detector}_{profile}_scores.csv"
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as handle:
                references[profile] = {row["File"]: row for row in csv.DictReader(handle) if row.get("File")}
    return references


# --- scoring (both modes) -------------------------------------------------------------------------------------------


def score_file(result: FileResult, *, timestamps: Sequence, windows: list, flags: dict[str, np.ndarray]) -> None:
    """NAB scores (one flag array per profile) and window F1 (the standard profile's flags) of one file."""
    try:
        for profile in PROFILES:
            result.nab[profile] = nab_file_score(
                flags[profile], timestamps=timestamps, windows=windows, profile=profile
            )
        result.f1 = window_f1(flags["standard"], timestamps=timestamps, windows=windows)
    except ValueError as exc:
        raise Refused(str(exc)) from exc


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summary(results: list[FileResult]) -> dict:
    """Totals over the scored files: normalized NAB score by profile, window F1 (mean over files with a scored
    window, by category, mean of the categories), windows found/scored, false-alarm runs, median delay."""
    scored = [result for result in results if result.f1 is not None]
    categories: dict[str, dict] = {}
    for result in scored:
        category = categories.setdefault(
            result.category, {"files": 0, "f1": [], "found": 0, "scored": 0, "false_alarm_runs": 0}
        )
        category["files"] += 1
        if result.f1.f1 is not None:
            category["f1"].append(result.f1.f1)
        category["found"] += result.f1.found
        category["scored"] += result.f1.scored_windows
        category["false_alarm_runs"] += result.f1.false_alarm_runs
    for category in categories.values():
        category["f1_files"] = len(category["f1"])
        category["mean_f1"] = _mean(category.pop("f1"))
    f1s = [result.f1.f1 for result in scored if result.f1.f1 is not None]
    without = [result for result in scored if result.windows == 0]
    delays = [delay for result in scored for delay in result.f1.delays]
    return {
        "files": len(results),
        "scored_files": len(scored),
        "refused_files": len(results) - len(scored),
        "nab_normalized": {profile: nab_normalize(r.nab[profile] for r in scored) for profile in PROFILES},
        "nab_raw": {profile: sum(r.nab[profile].score for r in scored) for profile in PROFILES},
        "mean_f1": _mean(f1s),
        "f1_files": len(f1s),
        "mean_f1_of_categories": _mean([c["mean_f1"] for c in categories.values() if c["mean_f1"] is not None]),
        "categories": categories,
        "found": sum(r.f1.found for r in scored),
        "scored_windows": sum(r.f1.scored_windows for r in scored),
        "false_alarm_runs_with_windows": sum(r.f1.false_alarm_runs for r in scored if r.windows),
        "false_alarm_runs_without_windows": sum(r.f1.false_alarm_runs for r in without),
        "files_without_windows": len(without),
        "files_without_windows_alarmed": sum(r.f1.false_alarm_runs > 0 for r in without),
        "median_delay": statistics.median(delays) if delays else None,
    }


# --- the two modes --------------------------------------------------------------------------------------------------


def _progress(index: int, total: int, result: FileResult) -> None:
    state = f"refused: {result.refused}" if result.refused else f"{result.seconds:.1f} s"
    print(f"[{index}/{total}] {result.name}: {state}", file=sys.stderr, flush=True)


def results_mode(root: Path, results: Path, *, detector: str, thresholds: dict[str, float]) -> list[FileResult]:
    """Score NAB-format results (`<results>/<category>/<detector>_<name>.csv`) against the labels in `root`."""
    references = _reference_scores(results, detector)
    paths = labeled_files(root)
    outcomes = []
    for index, path in enumerate(paths, start=1):
        started = time.perf_counter()
        relative = path.relative_to(root)
        result = FileResult(name=relative.as_posix(), category=relative.parent.as_posix(), windows=0)
        try:
            windows = _labels(path)
            result.windows = len(windows)
            (timestamps,) = _columns(path, "timestamp")
            results_path = results / relative.parent / f"{detector}_{relative.name}"
            if not results_path.is_file():
                raise Refused(f"no results file {results_path}")
            stamps, raw_scores = _columns(results_path, "timestamp", "anomaly_score")
            if stamps != timestamps:
                raise Refused(f"{results_path.name}: its timestamps are not the data file's, row for row")
            try:
                scores = np.array([float(value) for value in raw_scores], dtype=np.float64)
            except ValueError as exc:
                raise Refused(f"{results_path.name}: {exc}") from exc
            flags = {profile: nab_flags(scores, thresholds[profile]) for profile in PROFILES}
            score_file(result, timestamps=timestamps, windows=windows, flags=flags)
            for profile, rows in references.items():
                if result.name in rows:
                    result.references[profile] = rows[result.name]
        except Refused as exc:
            result.refused = str(exc)
        result.seconds = time.perf_counter() - started
        _progress(index, len(paths), result)
        outcomes.append(result)
    return outcomes


def _django() -> None:
    # The settings set NUMBA_CACHE_DIR before stumpy is imported (the compiled functions are then loaded, not built).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _detector_flags(timestamps: Sequence, values: np.ndarray, method: str | None, *, window: int | None = None):
    """Sensorhub's detector over one file: one flag per row of (timestamps, values), as `series_read_csv` gives
    them. The training part is NAB's probationary part (`nab_probation`: 15 % of the rows, at most 750): the
    baseline method builds its baseline from it, the discord method takes it as the sensor's first readings; no
    row of it is flagged. A row is flagged when its level is at least DETECTION_WARNING_LEVEL, as production
    gives it the status warning or critical. Raises `ApplicationError` when the detector refuses the series."""
    from django.conf import settings

    from detection.services.evaluation import default_window, detector_run

    method = method or settings.DETECTION_METHOD
    m = default_window(method) if window is None else window
    run = detector_run(
        np.asarray(values, dtype=np.float64),
        train=nab_probation(len(values)),
        window=m,
        method=method,
        timestamps=list(timestamps),
    )
    flags = np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        flags[run.train :] = run.levels >= settings.DETECTION_WARNING_LEVEL  # NaN (no level) is never flagged
    return flags


def detector_mode(root: Path, *, method: str | None, window: int | None) -> tuple[list[FileResult], list[FileResult]]:
    """Sensorhub's detector over every labeled file of `root`. Returns the results, and the same files with the
    refused ones replaced by a detector that never flags (for totals over the whole set)."""
    from common.exceptions import ApplicationError
    from detection.services.evaluation import series_read_csv, windows_read_json

    paths = labeled_files(root)
    outcomes, as_null = [], []
    for index, path in enumerate(paths, start=1):
        started = time.perf_counter()
        relative = path.relative_to(root)
        result = FileResult(name=relative.as_posix(), category=relative.parent.as_posix(), windows=0)
        null = FileResult(name=result.name, category=result.category, windows=0)
        try:
            windows = _labels(path)
            result.windows = null.windows = len(windows)
            try:
                # Read as the product reads them: naive timestamps in SENSORS_NAIVE_TIMEZONE, compared in UTC.
                timestamps, values = series_read_csv(path)
                windows = windows_read_json(path.with_suffix(".labels.json"))
                flags = _detector_flags(timestamps, values, method, window=window)
            except ApplicationError as exc:
                raise Refused(exc.detail) from exc
            score_file(result, timestamps=timestamps, windows=windows, flags=dict.fromkeys(PROFILES, flags))
        except Refused as exc:
            result.refused = str(exc)
        result.seconds = time.perf_counter() - started
        _progress(index, len(paths), result)
        outcomes.append(result)
        if result.refused is None:
            as_null.append(result)
            continue
        try:  # the rows as the file holds them, for a detector that never flags
            (stamps,) = _columns(path, "timestamp")
            score_file(
                null,
                timestamps=stamps,
                windows=_labels(path),
                flags=dict.fromkeys(PROFILES, np.zeros(len(stamps), dtype=bool)),
            )
            as_null.append(null)
        except Refused as exc:
            print(f"  {result.name}: cannot be counted as never flagging either: {exc}", file=sys.stderr)
    return outcomes, as_null


# --- output ---------------------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def print_files(results: list[FileResult], *, references: bool) -> None:
    width = max((len(result.name) for result in results), default=10)
    header = f"{'file':<{width}}  " + "  ".join(f"{SHORT[p]:>10}" for p in PROFILES)
    header += f"  {'norm std':>8}  {'F1':>5}  {'found':>6}  {'FA runs':>7}  {'delay':>5}"
    print(header + ("  NAB's score file" if references else ""))
    for result in results:
        if result.refused is not None:
            print(f"{result.name:<{width}}  refused: {result.refused}")
            continue
        scores = "  ".join(f"{result.nab[p].score:>10.4f}" for p in PROFILES)
        delays = result.f1.delays
        line = (
            f"{result.name:<{width}}  {scores}  {_fmt(nab_normalize([result.nab['standard']]), '.1f'):>8}  "
            f"{_fmt(result.f1.f1):>5}  {result.f1.found:>2}/{result.f1.scored_windows:<3}  "
            f"{result.f1.false_alarm_runs:>7}  {_fmt(statistics.median(delays) if delays else None, '.2f'):>5}"
        )
        if references:
            marks = []
            for profile in PROFILES:
                match = result.match(profile)
                if match is not None:
                    reference = float(result.references[profile]["Score"])
                    marks.append(f"{SHORT[profile]} {'equal' if match else f'DIFFERS ({reference:.6f})'}")
            line += "  " + ("; ".join(marks) or "-")
        print(line)


def print_summary(totals: dict, *, title: str) -> None:
    normalized = ", ".join(f"{p} {_fmt(v, '.2f')}" for p, v in totals["nab_normalized"].items())
    print(f"\n{title}: {totals['scored_files']} files scored, {totals['refused_files']} refused")
    print(f"NAB normalized (never flagging = 0, perfect = 100): {normalized}")
    print(
        f"window F1: mean {_fmt(totals['mean_f1'])} over {totals['f1_files']} files with a scored window, "
        f"mean of categories {_fmt(totals['mean_f1_of_categories'])}; windows found/scored "
        f"{totals['found']}/{totals['scored_windows']}; false-alarm runs {totals['false_alarm_runs_with_windows']} "
        f"on files with windows, {totals['false_alarm_runs_without_windows']} on the "
        f"{totals['files_without_windows']} files without (alarmed: {totals['files_without_windows_alarmed']}); "
        f"median first detection at {_fmt(totals['median_delay'], '.2f')} of the window's length"
    )
    print("| category | files | F1 files | mean F1 | found/scored | false-alarm runs |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, category in sorted(totals["categories"].items()):
        print(
            f"| {name} | {category['files']} | {category['f1_files']} | {_fmt(category['mean_f1'])} | "
            f"{category['found']}/{category['scored']} | {category['false_alarm_runs']} |"
        )


RULES = {
    "nab": (
        "NAB's scoring: detections in the first min(floor(0.15 x rows), 750) rows ignored; in a window only the "
        "first detection counts, tpWeight x S(p)/S(-1) with p its relative position; other detections cost "
        "fpWeight x S(p) by their distance past the previous window (full fpWeight without one); each missed "
        "window -fnWeight; normalized 100 x (score - null) / (perfect - null) over the files"
    ),
    "window_f1": (
        "training part int(0.15 x rows) (flags ignored, windows starting there not scored); a window is found by "
        "a flag inside it; flags within 144 rows after a window belong to it; other flags are false alarms, one "
        "per contiguous run; F1 = 2PR/(P+R), 0 when nothing is found, none without a scored window"
    ),
}


def _thresholds(args: argparse.Namespace) -> dict[str, float]:
    thresholds = dict.fromkeys(PROFILES, args.threshold)
    for item in args.profile_threshold:
        profile, _, value = item.partition("=")
        if profile not in PROFILES:
            sys.exit(f"--profile-threshold: {profile!r} is not one of {', '.join(PROFILES)}")
        try:
            thresholds[profile] = float(value)
        except ValueError:
            sys.exit(f"--profile-threshold: {value!r} is not a number")
    return thresholds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="labeled data: <category>/<name>.csv and <name>.labels.json")
    parser.add_argument("--results", type=Path, help="a NAB results folder: score it instead of running Sensorhub")
    parser.add_argument("--detector", help="detector name in the results' file names (default: the folder's name)")
    parser.add_argument("--threshold", type=float, help="with --results: detection when anomaly_score >= T")
    parser.add_argument(
        "--profile-threshold",
        action="append",
        default=[],
        metavar="PROFILE=T",
        help="with --results: another threshold for one profile (NAB publishes one per profile)",
    )
    parser.add_argument("--method", choices=["discord", "baseline"], help="detector method (default DETECTION_METHOD)")
    parser.add_argument("--window", type=int, help="detector window m (default: the method's default window)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        parser.error(f"{args.dir} is not a folder")

    if args.results is not None:
        if args.threshold is None:
            parser.error("--results needs --threshold")
        detector = args.detector or args.results.resolve().name
        thresholds = _thresholds(args)
        results = results_mode(args.dir, args.results, detector=detector, thresholds=thresholds)
        totals = summary(results)
        references = {p: [r.match(p) for r in results if r.match(p) is not None] for p in PROFILES}
        totals["reference_matches"] = {p: f"{sum(m)}/{len(m)}" for p, m in references.items() if m}
        output = {
            "mode": "results",
            "dir": str(args.dir),
            "results": str(args.results),
            "detector": detector,
            "thresholds": thresholds,
            "rules": RULES,
            "files": [result.as_dict() for result in results],
            "overall": totals,
        }
        if args.json:
            print(json.dumps(output, indent=1))
            return 0
        named = ", ".join(f"{p} {t!r}" for p, t in thresholds.items())
        print(f"{detector} results in {args.results}, thresholds: {named}\n")
        print_files(results, references=bool(references))
        print_summary(totals, title=f"{detector} on {args.dir}")
        for profile, counted in totals["reference_matches"].items():
            print(f"raw scores and row counts equal to NAB's {profile} score file: {counted} files")
        return 0

    _django()
    from django.conf import settings

    from detection import engine
    from detection.services.evaluation import default_window

    method = args.method or settings.DETECTION_METHOD
    started = time.perf_counter()
    engine.warm()
    print(f"detector warm-up {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    results, as_null = detector_mode(args.dir, method=method, window=args.window)
    totals = summary(results)
    everything = summary(as_null)
    configured = {
        "method": method,
        "window": default_window(method) if args.window is None else args.window,
        "warning": settings.DETECTION_WARNING_LEVEL,
        "train": "NAB's probationary part: min(floor(0.15 x rows), 750)",
    }
    output = {
        "mode": "detector",
        "dir": str(args.dir),
        "settings": configured,
        "rules": RULES,
        "files": [result.as_dict() for result in results],
        "overall": totals,
        "overall_refused_as_never_flagging": everything,
    }
    if args.json:
        print(json.dumps(output, indent=1))
        return 0
    print(
        f"Sensorhub's detector: m={configured['window']}, warning {configured['warning']}, "
        f"method {configured['method']}\n"
    )
    print_files(results, references=False)
    print_summary(totals, title=f"Sensorhub's detector on {args.dir}")
    if totals["refused_files"]:
        normalized = ", ".join(f"{p} {_fmt(v, '.2f')}" for p, v in everything["nab_normalized"].items())
        print(
            f"\nover all {everything['scored_files']} labeled files, the {totals['refused_files']} refused counted "
            f"as never flagging: NAB normalized {normalized}; window F1 mean {_fmt(everything['mean_f1'])}, "
            f"found/scored {everything['found']}/{everything['scored_windows']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
