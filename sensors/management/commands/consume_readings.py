from functools import partial

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sensors.models import IngestSource
from sensors.sources.mqtt import broker_parse, mqtt_consume
from sensors.sources.pubsub import pubsub_consume
from sensors.sources.runner import Batcher, Stopper


class Command(BaseCommand):
    help = (
        "Read sensor readings and store them through the ingestion service until SIGTERM/SIGINT. "
        "--source pubsub: the old contract on Redis channel SENSORS_PUBSUB_CHANNEL (at-most-once). "
        "--source mqtt: topics <SENSORS_MQTT_TOPIC_PREFIX>/<sensor> on MQTT_URL (at-least-once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=["pubsub", "mqtt"], default="pubsub")
        parser.add_argument("--redis-url", help="Default: REDIS_URL.")
        parser.add_argument("--channel", help="Default: SENSORS_PUBSUB_CHANNEL.")
        parser.add_argument("--mqtt-url", help="Default: MQTT_URL.")
        parser.add_argument("--topic-prefix", help="Default: SENSORS_MQTT_TOPIC_PREFIX.")
        parser.add_argument("--client-id", help="Names the MQTT session. Default: SENSORS_MQTT_CLIENT_ID.")
        parser.add_argument("--batch-size", type=int, help="Default: SENSORS_CONSUMER_BATCH_SIZE.")
        parser.add_argument("--batch-ms", type=int, help="Default: SENSORS_CONSUMER_BATCH_MS.")

    def handle(self, *args, source, batch_size, batch_ms, **options):
        consume = self._mqtt(**options) if source == "mqtt" else self._pubsub(**options)
        batch_size = batch_size or settings.SENSORS_CONSUMER_BATCH_SIZE
        batch_ms = batch_ms if batch_ms is not None else settings.SENSORS_CONSUMER_BATCH_MS
        if batch_size < 1 or batch_ms < 0:
            raise CommandError("--batch-size must be at least 1 and --batch-ms at least 0.")
        stopper = Stopper()
        stopper.install()
        batcher = Batcher(source=IngestSource(source), batch_size=batch_size, max_wait=batch_ms / 1000, stopper=stopper)
        consume(batcher=batcher, stopper=stopper)
        total = batcher.total
        self.stdout.write(
            f"Stopped: {total.received} received, {total.stored} stored, {total.duplicates} duplicates, "
            f"{total.rejected} rejected."
        )

    def _pubsub(self, *, redis_url, channel, **options):
        redis_url = redis_url or settings.REDIS_URL
        if not redis_url:
            raise CommandError("No Redis configured: set REDIS_URL or pass --redis-url.")
        channel = channel or settings.SENSORS_PUBSUB_CHANNEL
        self.stderr.write(f"Consuming Redis pub/sub channel {channel!r}; Ctrl-C or SIGTERM stops.")
        return partial(pubsub_consume, redis_url=redis_url, channel=channel)

    def _mqtt(self, *, mqtt_url, topic_prefix, client_id, **options):
        url = mqtt_url or settings.MQTT_URL
        if not url:
            raise CommandError("No MQTT broker configured: set MQTT_URL or pass --mqtt-url.")
        try:
            broker = broker_parse(url)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        prefix = (topic_prefix or settings.SENSORS_MQTT_TOPIC_PREFIX).strip("/")
        if not prefix or "+" in prefix or "#" in prefix:
            raise CommandError("The topic prefix must be a topic without wildcards, such as sensors.")
        client_id = client_id or settings.SENSORS_MQTT_CLIENT_ID
        self.stderr.write(
            f"Consuming MQTT {prefix}/+ at {broker.host}:{broker.port} as {client_id!r}; Ctrl-C or SIGTERM stops."
        )
        return partial(
            mqtt_consume,
            url=url,
            topic_prefix=prefix,
            client_id=client_id,
            session_expiry=settings.SENSORS_MQTT_SESSION_EXPIRY,
        )
