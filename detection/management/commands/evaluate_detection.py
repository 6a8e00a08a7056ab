import json
import math
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ApplicationError
from detection.models import Method
from detection.nab import nab_normalize
from detection.services.evaluation import (
    Evaluation,
    detection_evaluate,
    series_read_csv,
    windows_read_json,
)
from detection.services.evaluation_output import evaluation_plot, evaluation_rows_write


def _ratio(value: float | None, *, undefined: str) -> str:
    return f"{value:.3f}" if value is not None else f"undefined ({undefined})"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


class Command(BaseCommand):
    help = (
        "Measure detection quality on a labeled series: precision, recall and F1 over labeled anomaly windows, and "
        "the NAB score, with the production detector (rules: docs/detection.md, 'Quality' and 'NAB score')."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file with a header and timestamp,value rows (ISO 8601 timestamps).")
        parser.add_argument("--labels", required=True, metavar="WINDOWS.json", help="JSON list of [start, end] pairs.")
        parser.add_argument(
            "--method",
            choices=Method.values,
            help="Detection method (default DETECTION_METHOD; docs/detection.md, 'Methods').",
        )
        parser.add_argument("--train", type=int, metavar="N", help="Training points (default: the first 15%%).")
        parser.add_argument(
            "--window", type=int, metavar="m", help="Window m (default: the method's, e.g. DETECTION_WINDOW)."
        )
        parser.add_argument("--warning", type=float, help="Warning level (default DETECTION_WARNING_LEVEL).")
        parser.add_argument(
            "--critical",
            type=float,
            help="Critical level (default DETECTION_CRITICAL_LEVEL, raised to --warning if below it).",
        )
        parser.add_argument(
            "--tail", type=int, metavar="POINTS", help="Flags this many points after a window belong to it (default m)."
        )
        parser.add_argument(
            "--ok-run",
            type=int,
            default=1,
            metavar="K",
            help="A false alarm run ends after K unflagged readings (default 1: strictly contiguous).",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object instead of text."
        )
        parser.add_argument(
            "--output", metavar="ROWS.csv", help="Write timestamp,value,level,status for every row to this file."
        )
        parser.add_argument(
            "--plot", metavar="OUT.png", help="Draw the series, its levels, the windows and the flagged readings."
        )

    def handle(self, *args, file, labels, method, train, window, warning, critical, tail, ok_run, as_json, **options):
        output, plot = options.get("output"), options.get("plot")
        try:
            series = series_read_csv(file)
            windows = windows_read_json(labels)
            evaluation = detection_evaluate(
                timestamps=series.timestamps,
                values=series.values,
                windows=windows,
                method=method,
                train=train,
                window=window,
                warning=warning,
                critical=critical if critical is not None else self._critical(warning),
                tail=tail,
                ok_run=ok_run,
                duplicates=series.duplicates,
                unsorted=series.unsorted,
            )
            if output:
                evaluation_rows_write(output, timestamps=series.timestamps, values=series.values, evaluation=evaluation)
            if plot:
                evaluation_plot(
                    plot,
                    timestamps=series.timestamps,
                    values=series.values,
                    windows=windows,
                    evaluation=evaluation,
                    title="/".join(Path(file).parts[-2:]),
                )
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        if as_json:
            self.stdout.write(_json_dumps(evaluation.as_dict()))
        else:
            self._print(evaluation, file)

    @staticmethod
    def _critical(warning: float | None) -> float | None:
        """With only --warning given, critical stays the setting unless that would fall below the warning."""
        if warning is None:
            return None
        return max(warning, settings.DETECTION_CRITICAL_LEVEL)

    def _print(self, e: Evaluation, file: str) -> None:
        write = self.stdout.write
        write(
            f"{file}: {e.points} points; baseline from the first {e.train} ({e.baseline_points} after cleaning); "
            f"method {e.method}, m={e.window}, warning {e.warning:g}, critical {e.critical:g}; scored from "
            f"{e.scored_from:%Y-%m-%d %H:%M} UTC ({e.scored_points} points)."
        )
        for note in e.notes:
            write(f"note: {note}")
        write("")
        write(f"{'window (UTC)':<36} {'found':<6} {'first detection':<17} {'delay':>8} {'peak level':>10}")
        for w in e.windows:
            found = "-" if not w.scored else ("yes" if w.found else "no")
            first = f"{w.first_detection:%Y-%m-%d %H:%M}" if w.first_detection else "-"
            delay = _duration(w.delay.total_seconds()) if w.delay is not None else "-"
            peak = f"{w.peak_level:.0f}" if w.peak_level is not None and math.isfinite(w.peak_level) else "-"
            line = f"{w.start:%Y-%m-%d %H:%M} → {w.end:%Y-%m-%d %H:%M}   {found:<6} {first:<17} {delay:>8} {peak:>10}"
            write(f"{line}  {w.note}".rstrip())
        write("")
        for alarm in e.false_alarms:
            write(
                f"false alarm {alarm.start:%Y-%m-%d %H:%M} → {alarm.end:%Y-%m-%d %H:%M} "
                f"({alarm.flagged} flagged, peak level {alarm.peak_level:.0f})"
            )
        scored = e.found + e.missed
        write(
            f"precision {_ratio(e.precision, undefined='no alarms')}  "
            f"recall {_ratio(e.recall, undefined='no windows to find')}  "
            f"F1 {_ratio(e.f1, undefined='no windows and no alarms')}  "
            f"({e.found} of {scored} windows found, {len(e.false_alarms)} false alarm runs)"
        )
        standard = e.nab.get("standard")
        if standard is not None:
            value = nab_normalize([standard])
            normalized = f"{value:.1f}" if value is not None else "undefined (no window)"
            write(
                f"NAB standard score {standard.score:.3f} (never flagging {standard.null:g}, perfect "
                f"{standard.perfect:g}; normalized {normalized}): {standard.detected} windows detected, "
                f"{standard.missed} missed, {standard.false_positives} flagged rows outside windows"
            )
        write(
            f"rules: flags up to {e.tail} points after a window's end belong to it (not false alarms); a false "
            f"alarm run ends after {e.ok_run} unflagged reading(s)."
        )


def _json_dumps(data: dict) -> str:
    """JSON has no infinity: a level past engine.LEVEL_CAP never occurs, but a NaN or inf must not break parsers."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(data))
