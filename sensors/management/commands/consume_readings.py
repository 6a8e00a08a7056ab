from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from sensors.models import IngestSource
from sensors.sources.pubsub import pubsub_consume
from sensors.sources.runner import Batcher, Stopper
from sensors.sources.stream import StreamOptions, default_consumer_name, stream_consume


class Command(BaseCommand):
    help = (
        "Read sensor readings and store them through the ingestion service until SIGTERM/SIGINT. "
        "--source stream: Redis stream SENSORS_STREAM_KEY through a consumer group, nothing lost (docs/ingestion.md); "
        "--source pubsub: the old contract on channel SENSORS_PUBSUB_CHANNEL (at-most-once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=["stream", "pubsub"], default="pubsub")
        parser.add_argument("--redis-url", help="Default: REDIS_URL.")
        parser.add_argument("--batch-size", type=int, help="Default: SENSORS_CONSUMER_BATCH_SIZE.")
        parser.add_argument("--batch-ms", type=int, help="Default: SENSORS_CONSUMER_BATCH_MS.")
        pubsub = parser.add_argument_group("pubsub")
        pubsub.add_argument("--channel", help="Default: SENSORS_PUBSUB_CHANNEL.")
        stream = parser.add_argument_group("stream")
        stream.add_argument("--stream", help="Stream key. Default: SENSORS_STREAM_KEY.")
        stream.add_argument("--group", help="Consumer group. Default: SENSORS_STREAM_GROUP.")
        stream.add_argument("--consumer", help="This consumer's name in the group. Default: the host name.")
        stream.add_argument("--claim-idle-ms", type=int, help="Default: SENSORS_STREAM_CLAIM_IDLE_MS.")

    def handle(self, *args, source, redis_url, batch_size, batch_ms, **options):
        redis_url = redis_url or settings.REDIS_URL
        if not redis_url:
            raise CommandError("No Redis configured: set REDIS_URL or pass --redis-url.")
        batch_size = batch_size or settings.SENSORS_CONSUMER_BATCH_SIZE
        batch_ms = batch_ms if batch_ms is not None else settings.SENSORS_CONSUMER_BATCH_MS
        if batch_size < 1 or batch_ms < 0:
            raise CommandError("--batch-size must be at least 1 and --batch-ms at least 0.")
        stopper = Stopper()
        stopper.install()
        if source == "stream":
            batcher = self._stream(redis_url, batch_size, batch_ms, stopper, options)
        else:
            batcher = Batcher(
                source=IngestSource.PUBSUB, batch_size=batch_size, max_wait=batch_ms / 1000, stopper=stopper
            )
            channel = options["channel"] or settings.SENSORS_PUBSUB_CHANNEL
            self.stderr.write(f"Consuming Redis pub/sub channel {channel!r}; Ctrl-C or SIGTERM stops.")
            pubsub_consume(redis_url=redis_url, channel=channel, batcher=batcher, stopper=stopper)
        total = batcher.total
        self.stdout.write(
            f"Stopped: {total.received} received, {total.stored} stored, {total.duplicates} duplicates, "
            f"{total.rejected} rejected."
        )

    def _stream(self, redis_url, batch_size, batch_ms, stopper, options) -> Batcher:
        claim_idle_ms = options["claim_idle_ms"]
        stream_options = StreamOptions(
            stream=options["stream"] or settings.SENSORS_STREAM_KEY,
            group=options["group"] or settings.SENSORS_STREAM_GROUP,
            consumer=options["consumer"] or settings.SENSORS_STREAM_CONSUMER or default_consumer_name(),
            count=batch_size,
            # A read returns at once when entries are waiting; `block_ms` only bounds an idle wait.
            block_ms=max(batch_ms, 1),
            claim_idle_ms=claim_idle_ms if claim_idle_ms is not None else settings.SENSORS_STREAM_CLAIM_IDLE_MS,
            trim=settings.SENSORS_STREAM_TRIM,
        )
        if stream_options.claim_idle_ms < 0:
            raise CommandError("--claim-idle-ms must be at least 0.")
        # Stream fields are text, so a value may be a number or numeric text there.
        batcher = Batcher(
            source=IngestSource.STREAM,
            batch_size=batch_size,
            max_wait=batch_ms / 1000,
            stopper=stopper,
            # SQLite (embedded mode) takes one writer at a time: there the batches are written in this thread.
            writers=settings.SENSORS_STREAM_WRITERS if connection.vendor == "postgresql" else 0,
            text_values=True,
        )
        self.stderr.write(
            f"Consuming Redis stream {stream_options.stream!r} as {stream_options.consumer!r} in group "
            f"{stream_options.group!r}; Ctrl-C or SIGTERM stops."
        )
        stream_consume(redis_url=redis_url, options=stream_options, batcher=batcher, stopper=stopper)
        return batcher
