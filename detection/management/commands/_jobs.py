"""What `select_baselines` and `augment_baselines` share: the sensors option, the progress bar, the summary."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.core.management.base import BaseCommand, CommandError

from common.jobs import tqdm_progress
from sensors.models import Sensor

if TYPE_CHECKING:
    from detection.services.baselines import JobResult


class JobCommand(BaseCommand):
    job: Callable[..., JobResult]  # the service: baselines_select or baselines_augment
    noun = ""

    def add_arguments(self, parser):
        parser.add_argument(
            "--sensor", action="append", dest="sensors", metavar="KEY", help="Only this sensor (repeatable)."
        )

    def handle(self, *args, sensors: list[str] | None, **options):
        sensor_ids = None
        if sensors:
            found = dict(Sensor.objects.filter(key__in=sensors).values_list("key", "pk"))
            unknown = sorted(set(sensors) - set(found))
            if unknown:
                raise CommandError(f"No sensor with key {', '.join(map(repr, unknown))}.")
            sensor_ids = list(found.values())
        with tqdm_progress(unit="sensor", file=self.stderr, disable=options["verbosity"] < 1) as progress:
            try:
                result = self.job(sensor_ids=sensor_ids, progress=progress)
            except Exception as exc:
                # The run is recorded as failed with the error and an alert_critical event; one line here.
                raise CommandError(f"{self.noun} failed: {type(exc).__name__}: {exc}") from exc
        total = len(result.outcomes)
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(result.counts().items()))
        handled = f"{total} sensor{'' if total == 1 else 's'}: {counts}" if total else "no sensors"
        self.stdout.write(f"{self.noun} (job run {result.job_run}): {handled}.")
        if options["verbosity"] >= 1:
            for outcome in result.outcomes:
                detail = outcome.get("baseline") or outcome.get("reason") or outcome.get("error") or ""
                self.stdout.write(f"  {outcome['sensor']}: {outcome['outcome']} {detail}".rstrip())
