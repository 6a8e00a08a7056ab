from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ApplicationError
from sensors.models import Platform, Sensor
from sensors.services.device_keys import device_key_create


class Command(BaseCommand):
    help = (
        "Create a device key bound to one sensor or one platform and print it "
        "(it is stored hashed and cannot be shown again)."
    )

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--sensor", metavar="KEY", help="The key may write readings of this sensor only.")
        target.add_argument("--platform", metavar="SLUG", help="The key may write readings of this platform's sensors.")
        parser.add_argument("--name", help="A label for the admin (default: the sensor or platform).")

    def handle(self, *args, sensor, platform, name, **options):
        target = {}
        try:
            if sensor:
                target["sensor"] = Sensor.objects.get(key=sensor)
            else:
                target["platform"] = Platform.objects.get(slug=platform)
        except (Sensor.DoesNotExist, Platform.DoesNotExist) as exc:
            what = f"sensor {sensor!r}" if sensor else f"platform {platform!r}"
            raise CommandError(f"No {what}.") from exc
        label = name or f"{next(iter(target.values()))}"
        try:
            key, raw = device_key_create(name=label, **target)
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        self.stderr.write(f"Device key {key.name!r} for {key.target}. Send it as 'Authorization: Device <key>'.")
        self.stdout.write(raw)
