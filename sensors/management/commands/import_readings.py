import os
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ApplicationError
from common.jobs import tqdm_progress
from sensors.services.csv_import import readings_import_csv

SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = (
        "Import readings from a CSV file with columns timestamp,value[,sensor] (cleaning rules: docs/ingestion.md). "
        "Bad rows are reported with their line numbers and do not stop the import."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of the CSV file ('-' reads standard input).")
        parser.add_argument("--sensor", metavar="KEY", help="The sensor of every row (files without a sensor column).")
        parser.add_argument("--delimiter", default=",", help="Column separator, one character (default ',').")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, file, sensor, delimiter, no_progress, **options):
        if delimiter == "\\t":
            delimiter = "\t"
        if len(delimiter) != 1:
            raise CommandError("--delimiter must be one character (use '\\t' for a tab).")
        started = time.monotonic()
        try:
            handle = open(file, encoding="utf-8-sig", newline="") if file != "-" else None  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        size = os.path.getsize(file) if handle else None
        try:
            with tqdm_progress(unit="B", scale=True, desc="Importing", disable=no_progress, file=self.stderr) as bar:
                lines = handle if handle is not None else sys.stdin
                report = readings_import_csv(
                    lines=lines, sensor_key=sensor, progress=bar, size=size, delimiter=delimiter
                )
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
        finally:
            if handle is not None:
                handle.close()

        for line, reason in report.errors[:SHOWN_ERRORS]:
            self.stderr.write(f"line {line}: {reason}")
        if report.result.rejected > SHOWN_ERRORS:
            self.stderr.write(
                f"... and {report.result.rejected - SHOWN_ERRORS} more bad rows (see Rejected messages in the admin)."
            )
        elapsed = time.monotonic() - started
        result = report.result
        self.stdout.write(
            f"{file}: {report.rows} rows, {result.stored} stored, {result.duplicates} duplicates, "
            f"{result.rejected} bad, {report.skipped} blank or comment lines skipped "
            f"in {elapsed:.1f} s ({report.rows / elapsed if elapsed else 0:,.0f} rows/s)."
        )
