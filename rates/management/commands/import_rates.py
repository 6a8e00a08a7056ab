import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ApplicationError
from common.jobs import tqdm_progress
from rates.services import rates_import_history


class Command(BaseCommand):
    help = (
        "Import the ECB historical reference rates (eurofxref-hist.csv, or eurofxref-hist.zip holding it) as "
        "provider 'ecb'. Idempotent: importing the same file again changes nothing but the fetch times."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        started = time.perf_counter()
        with tqdm_progress(unit="day", file=self.stderr, disable=options["verbosity"] < 1) as progress:
            try:
                result = rates_import_history(path=file, progress=progress)
            except ApplicationError as exc:
                raise CommandError(exc.detail) from exc
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"Imported {result.rates} published rates ({result.rows} rows with inverses) over {result.days} days "
            f"({result.first} to {result.last}) in {elapsed:.1f} s ({result.rows / max(elapsed, 1e-9):,.0f} rows/s)."
        )
        if result.unknown:
            self.stdout.write(f"Skipped unknown currencies: {', '.join(sorted(result.unknown))}.")
