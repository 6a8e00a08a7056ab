from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sensors.models import IngestSource
from sensors.sources.pubsub import pubsub_consume
from sensors.sources.runner import Batcher, Stopper


class Command(BaseCommand):
    help = (
        "Read sensor readings from Redis and store them through the ingestion service until SIGTERM/SIGINT. "
        "--source pubsub: the old contract on channel SENSORS_PUBSUB_CHANNEL (at-most-once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=["pubsub"], default="pubsub")
        parser.add_argument("--redis-url", help="Default: REDIS_URL.")
        parser.add_argument("--channel", help="Default: SENSORS_PUBSUB_CHANNEL.")
        parser.add_argument("--batch-size", type=int, help="Default: SENSORS_CONSUMER_BATCH_SIZE.")
        parser.add_argument("--batch-ms", type=int, help="Default: SENSORS_CONSUMER_BATCH_MS.")

    def handle(self, *args, source, redis_url, channel, batch_size, batch_ms, **options):
        redis_url = redis_url or settings.REDIS_URL
        if not redis_url:
            raise CommandError("No Redis configured: set REDIS_URL or pass --redis-url.")
        batch_size = batch_size or settings.SENSORS_CONSUMER_BATCH_SIZE
        batch_ms = batch_ms if batch_ms is not None else settings.SENSORS_CONSUMER_BATCH_MS
        if batch_size < 1 or batch_ms < 0:
            raise CommandError("--batch-size must be at least 1 and --batch-ms at least 0.")
        stopper = Stopper()
        stopper.install()
        batcher = Batcher(source=IngestSource.PUBSUB, batch_size=batch_size, max_wait=batch_ms / 1000, stopper=stopper)
        channel = channel or settings.SENSORS_PUBSUB_CHANNEL
        self.stderr.write(f"Consuming Redis pub/sub channel {channel!r}; Ctrl-C or SIGTERM stops.")
        pubsub_consume(redis_url=redis_url, channel=channel, batcher=batcher, stopper=stopper)
        total = batcher.total
        self.stdout.write(
            f"Stopped: {total.received} received, {total.stored} stored, {total.duplicates} duplicates, "
            f"{total.rejected} rejected."
        )
