from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ApplicationError
from detection.services.baselines import baseline_build
from sensors.models import Sensor


class Command(BaseCommand):
    help = (
        "Build a sensor's baseline from its first N readings (oldest first, cleaned) and make it the sensor's "
        "baseline; its detector restarts from it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sensor", required=True, metavar="KEY")
        parser.add_argument("--points", required=True, type=int, metavar="N", help="How many first readings.")
        parser.add_argument(
            "--window", type=int, metavar="m", help="Window for cleaning and the max distance (default: the sensor's)."
        )

    def handle(self, *args, sensor: str, points: int, window: int | None, **options):
        found = Sensor.objects.filter(key=sensor).first()
        if found is None:
            raise CommandError(f"No sensor with key {sensor!r}.")
        try:
            baseline = baseline_build(sensor=found, points=points, window=window)
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(
            f"Built {baseline.name} for {found.key}: {baseline.points} points (m={baseline.window}), mean "
            f"{baseline.mean:.6g}, variance {baseline.variance:.6g}, max distance {baseline.max_distance:.6g}; "
            f"it is now the sensor's baseline."
        )
        self.stdout.write(baseline.description)
