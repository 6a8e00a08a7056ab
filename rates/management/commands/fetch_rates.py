from datetime import date

from django.core.management.base import BaseCommand, CommandError

from common.jobs import tqdm_progress
from rates.providers import PROVIDERS
from rates.services import RatesUnavailableError, rates_update


class Command(BaseCommand):
    help = "Fetch exchange rates now from the configured providers in order (or one provider), and store them."

    def add_arguments(self, parser):
        parser.add_argument("--provider", choices=sorted(PROVIDERS), help="Only this provider (no fallback).")
        parser.add_argument("--date", type=date.fromisoformat, help="The rates of this day (YYYY-MM-DD).")

    def handle(self, *args, provider, date, **options):
        with tqdm_progress(unit="provider", file=self.stderr, disable=options["verbosity"] < 1) as progress:
            try:
                fetch = rates_update(provider=provider, on=date, progress=progress)
            except RatesUnavailableError as exc:
                raise CommandError(exc.detail) from exc
        self.stdout.write(f"Stored {fetch.rows} rates from {fetch.provider} as of {fetch.as_of}.")
