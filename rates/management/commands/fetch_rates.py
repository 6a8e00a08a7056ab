from datetime import date

from django.core.management.base import BaseCommand, CommandError

from common.jobs import tqdm_progress
from rates.providers import PROVIDERS
from rates.services import RatesUnavailableError, rates_demo_load, rates_update


class Command(BaseCommand):
    help = "Fetch exchange rates now from the configured providers in order (or one provider), and store them."

    def add_arguments(self, parser):
        parser.add_argument("--provider", choices=sorted(PROVIDERS), help="Only this provider (no fallback).")
        parser.add_argument("--date", type=date.fromisoformat, help="The rates of this day (YYYY-MM-DD).")
        parser.add_argument(
            "--demo-if-offline",
            action="store_true",
            help="When no provider delivers and no real rates are stored, store demo rates (provider demo, labelled "
            "not real everywhere) instead of failing; make run uses it.",
        )

    def handle(self, *args, provider, date, **options):
        with tqdm_progress(unit="provider", file=self.stderr, disable=options["verbosity"] < 1) as progress:
            try:
                fetch = rates_update(provider=provider, on=date, progress=progress)
            except RatesUnavailableError as exc:
                if not options["demo_if_offline"]:
                    raise CommandError(exc.detail) from exc
                self._offline(exc.detail)
                return
        self.stdout.write(f"Stored {fetch.rows} rates from {fetch.provider} as of {fetch.as_of}.")

    def _offline(self, reason: str) -> None:
        demo = rates_demo_load()
        if demo is None:
            self.stdout.write(f"Rates not updated ({reason}); the last real rates stay.")
            return
        self.stdout.write(
            self.style.WARNING(
                f"No rate provider reachable ({reason}).\nStored {demo.rows} DEMO rates (provider 'demo', made up, "
                "not real); the first real update replaces them."
            )
        )
