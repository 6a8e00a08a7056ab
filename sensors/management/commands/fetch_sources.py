from django.core.management.base import BaseCommand, CommandError

from sensors.models import SensorSource, SourceFetch
from sensors.services.external import SourceBusyError, fetch_summary, source_fetch, sources_fetch_due


class Command(BaseCommand):
    help = (
        "Fetch the external sources now: every enabled one (as the schedule does), or the source of one sensor "
        "(even when disabled). Prints one line per source; exits non-zero when a source failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sensor", metavar="KEY", help="Only the source of this sensor.")

    def handle(self, *args, sensor, **options):
        if sensor:
            source = SensorSource.objects.select_related("sensor").filter(sensor__key=sensor).first()
            if source is None:
                raise CommandError(f"Sensor {sensor!r} has no external source.")
            try:
                fetches, busy = [source_fetch(source=source)], []
            except SourceBusyError as exc:
                raise CommandError(exc.detail) from exc
        else:
            run = sources_fetch_due()
            fetches, busy = run.fetches, run.busy
        for fetch in fetches:
            key = fetch.source.sensor.key
            if fetch.status == SourceFetch.Status.SUCCESS:
                self.stdout.write(f"{key}: {fetch_summary(fetch)}")
            else:
                self.stdout.write(f"{key}: failed: {fetch.error}")
        for key in busy:
            self.stdout.write(f"{key}: skipped, another fetch of it is running")
        if not fetches and not busy:
            self.stdout.write("No enabled external source.")
        failed = [fetch.source.sensor.key for fetch in fetches if fetch.status == SourceFetch.Status.FAILED]
        if failed:
            raise CommandError(f"{len(failed)} of {len(fetches)} sources failed: {', '.join(failed)}.")
