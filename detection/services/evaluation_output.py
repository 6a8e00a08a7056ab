"""What the detector saw on an evaluated series: every row as CSV, and a picture (matplotlib, headless).

`evaluate_detection --output rows.csv` writes `timestamp,value,level,status` for every row, so that results can be
plotted or scored by other tools; `--plot out.png` draws the series, its levels on a second axis, the labeled
windows shaded and the flagged readings marked (docs/detection.md has one per method).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from common.exceptions import ApplicationError
from detection.models import FLAGGED
from detection.services.evaluation import Evaluation


def evaluation_rows_write(
    path: str | Path, *, timestamps: Sequence[datetime], values: np.ndarray, evaluation: Evaluation
) -> int:
    """Write one row per point (`level` empty where undefined, `undefined` in the training part); returns the
    number of rows. Timestamps are ISO 8601 in UTC."""
    statuses = evaluation.statuses()
    try:
        with Path(path).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "value", "level", "status"])
            for timestamp, value, level, status in zip(timestamps, values, evaluation.levels, statuses, strict=True):
                writer.writerow([timestamp.isoformat(), repr(float(value)), "" if math.isnan(level) else level, status])
    except OSError as exc:
        raise ApplicationError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    return len(statuses)


def evaluation_plot(
    path: str | Path,
    *,
    timestamps: Sequence[datetime],
    values: np.ndarray,
    windows: Sequence[tuple[datetime, datetime]],
    evaluation: Evaluation,
    title: str = "",
) -> None:
    """A PNG of the series (top: values, labeled windows shaded, flagged readings marked; bottom: levels with the
    warning and critical lines, the training part greyed)."""
    try:
        import matplotlib
    except ImportError as exc:  # a base dependency; only a broken install lacks it
        raise ApplicationError("--plot needs matplotlib (requirements/base.txt).") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    statuses = evaluation.statuses()
    flagged = np.array([status in FLAGGED for status in statuses], dtype=bool)
    stamps = list(timestamps)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(14, 5.5), sharex=True, height_ratios=(3, 2))
    top.plot(stamps, values, linewidth=0.6, color="#1f5fa8", label="value")
    for index, (start, end) in enumerate(windows):
        for axis in (top, bottom):
            axis.axvspan(start, end, color="#f4a340", alpha=0.25, label="labeled window" if index == 0 else None)
    if flagged.any():
        marks = np.flatnonzero(flagged)
        top.scatter([stamps[i] for i in marks], values[marks], s=9, color="#c0392b", zorder=3, label="flagged")
    training_end = stamps[min(evaluation.train, len(stamps) - 1)]
    for axis in (top, bottom):
        axis.axvspan(stamps[0], training_end, color="#999999", alpha=0.15, label=None)
    top.legend(loc="upper left", fontsize=7)
    top.set_ylabel("value")
    levels = np.asarray(evaluation.levels, dtype=np.float64)
    bottom.plot(stamps, np.clip(levels, 0, 1000), linewidth=0.6, color="#555555", label="level")
    bottom.axhline(evaluation.warning, color="#e67e22", linewidth=0.8, label=f"warning {evaluation.warning:g}")
    bottom.axhline(evaluation.critical, color="#c0392b", linewidth=0.8, label=f"critical {evaluation.critical:g}")
    bottom.set_ylabel("level (capped at 1000)")
    bottom.legend(loc="upper left", fontsize=7)
    f1 = "–" if evaluation.f1 is None else f"{evaluation.f1:.2f}"
    standard = evaluation.nab.get("standard")
    nab = "–" if standard is None else f"{standard.score:.2f}"
    figure.suptitle(
        f"{title}  method {evaluation.method}, m={evaluation.window}: window F1 {f1}, NAB standard {nab} "
        f"({evaluation.found}/{evaluation.found + evaluation.missed} windows, "
        f"{len(evaluation.false_alarms)} false-alarm runs)",
        fontsize=9,
    )
    figure.autofmt_xdate()
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=90)
    except OSError as exc:
        raise ApplicationError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    finally:
        plt.close(figure)
