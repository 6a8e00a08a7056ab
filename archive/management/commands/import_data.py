from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from archive.services.imports import archive_import, import_refuse_if_not_empty
from common.exceptions import ApplicationError
from common.jobs import tqdm_progress


class Command(BaseCommand):
    help = (
        "Restore an archive made by export_data (jsonl or the zip of CSV files) in one transaction. Refuses a "
        "database that already holds sensor data unless --merge (existing rows kept, duplicates skipped). "
        "docs/archive.md"
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--merge", action="store_true", help="import into a non-empty database: keep existing rows, skip duplicates"
        )

    def handle(self, *args, file: Path, merge: bool, **options):
        try:
            if not merge:
                import_refuse_if_not_empty()  # before the progress bar: the refusal is the only line
            unit = "row" if file.suffix == ".zip" else "B"
            with tqdm_progress(file=self.stderr, unit=unit, scale=True, disable=options["verbosity"] < 1) as progress:
                result = archive_import(path=file, merge=merge, progress=progress)
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        width = max(len(name) for name in result.counts)
        lines = [f"{'table':<{width}}  {'rows':>12}  {'inserted':>12}  {'skipped':>10}  checksum (sha256)"]
        for name, count in result.counts.items():
            lines.append(
                f"{name:<{width}}  {count:>12,}  {result.inserted[name]:>12,}  {result.skipped[name]:>10,}  "
                f"{result.checksums[name]}"
            )
        if result.verified:
            lines.append("Restored exactly: every table's count and checksum recomputed from the database match.")
        else:
            lines.append("Merged: existing rows kept, duplicates skipped (the file's checksums match its rows).")
        if result.users_missing:
            lines.append(
                f"{result.users_missing} links to users (who acknowledged or resolved an anomaly) left empty: no user "
                "with that email here."
            )
        self.stdout.write("\n".join(lines))
