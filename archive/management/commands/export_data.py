import os
import sys
from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from archive.services.export import FORMATS, archive_export
from common.exceptions import ApplicationError
from common.jobs import tqdm_progress


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since {text!r} is not an ISO 8601 instant (e.g. 2024-12-01T00:00:00Z).") from None
    if value.tzinfo is None:
        raise CommandError(f"--since {text!r} needs a UTC offset (e.g. 2024-12-01T00:00:00Z).")
    return value


class Command(BaseCommand):
    help = (
        "Export every sensor as one document with its platform, installation, readings, detections, anomalies and "
        "events (jsonl), or the same rows as a zip of CSV files (csv). Streams to stdout unless --output is given; "
        "the last document (or manifest.json) carries each table's row count and checksum. docs/archive.md"
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument("--output", type=Path, help="file to write (default: stdout)")
        parser.add_argument("--since", help="only readings, detections, anomalies and events from this instant on")
        parser.add_argument("--platform", help="only the sensors of the platform with this slug")

    def handle(self, *args, format: str, output: Path | None, since: str | None, platform: str | None, **options):
        since_value = _instant(since) if since else None
        if output is None and format == "csv" and sys.stdout.isatty():
            raise CommandError("A zip is not for a terminal: give --output FILE or redirect stdout.")
        target = output.open("wb") if output else getattr(self.stdout._out, "buffer", None)
        if target is None:
            raise CommandError("stdout takes no bytes here: give --output FILE.")
        try:
            with tqdm_progress(file=self.stderr, unit="row", scale=True, disable=options["verbosity"] < 1) as progress:
                result = archive_export(
                    out=target, format=format, since=since_value, platform=platform, progress=progress
                )
            target.flush()
        except BrokenPipeError:
            # The reader went away (`export_data | head`): stop like any Unix filter, without a traceback; the
            # interpreter's last flush of stdout must not meet the closed pipe either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise CommandError("stdout was closed before the export ended.") from None
        except ApplicationError as exc:
            if output:
                target.close()
                output.unlink(missing_ok=True)
            raise CommandError(exc.detail) from exc
        finally:
            if output and not target.closed:
                target.close()
        if options["verbosity"] >= 1:
            counts = ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in result.counts.items())
            self.stderr.write(f"Exported {counts}{f' to {output}' if output else ''}.")
