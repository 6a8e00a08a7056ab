from django.core.management.base import BaseCommand, CommandError

from sensors.selectors import source_get
from sensors.services.http_sources import SourceBusyError, SourcesRun, fetch_summary, source_fetch, sources_fetch_due


class Command(BaseCommand):
    help = (
        "Fetch the external sources now: every enabled one (as the schedule does), or the source of one sensor "
        "(even when disabled). Prints one line per source; exits non-zero when a source failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sensor", metavar="KEY", help="Only the source of this sensor.")

    def handle(self, *args, sensor, **options):
        if sensor:
            source = source_get(sensor_key=sensor)
            if source is None:
                raise CommandError(f"Sensor {sensor!r} has no external source.")
            try:
                run = SourcesRun(fetches=[source_fetch(source=source)])
            except SourceBusyError as exc:
                raise CommandError(exc.detail) from exc
        else:
            run = sources_fetch_due()
        for fetch in run.fetches:
            self.stdout.write(f"{fetch.source.sensor.key}: {fetch_summary(fetch)}")
        for key in run.busy:
            self.stdout.write(f"{key}: skipped, another fetch of it is running")
        if not run.fetches and not run.busy:
            self.stdout.write("No enabled external source.")
        if run.failed:
            failed = ", ".join(fetch.source.sensor.key for fetch in run.failed)
            raise CommandError(f"{len(run.failed)} of {len(run.fetches)} sources failed: {failed}.")
