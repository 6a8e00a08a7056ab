from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from common.processes import processes_choose, processes_missing


class Command(BaseCommand):
    help = (
        "Print the Procfile processes this configuration runs, space-separated (make run starts them with honcho): "
        "web, worker, detect, beat and simulate always; the Redis stream and pub/sub consumers with REDIS_URL; "
        "the MQTT consumer with MQTT_URL."
    )

    def add_arguments(self, parser):
        parser.add_argument("--procfile", default=str(settings.BASE_DIR / "Procfile"), help="Default: ./Procfile.")

    def handle(self, *args, procfile, **options):
        path = Path(procfile)
        if not path.is_file():
            raise CommandError(f"No Procfile at {path}.")
        names = processes_choose(redis_url=settings.REDIS_URL, mqtt_url=settings.MQTT_URL)
        missing = processes_missing(names, path)
        if missing:
            raise CommandError(f"The Procfile {path} declares no process named {', '.join(missing)}.")
        self.stdout.write(" ".join(names))
