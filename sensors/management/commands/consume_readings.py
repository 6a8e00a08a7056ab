from functools import partial

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from sensors.models import Transport
from sensors.transports.mqtt import broker_parse, mqtt_consume
from sensors.transports.pubsub import pubsub_consume
from sensors.transports.runner import Batcher, Stopper, gc_tuned
from sensors.transports.stream import StreamOptions, default_consumer_name, stream_consume


class Command(BaseCommand):
    help = (
        "Read sensor readings and store them through the ingestion service until SIGTERM/SIGINT. "
        "--source stream: Redis stream SENSORS_STREAM_KEY through a consumer group, nothing lost (docs/ingestion.md). "
        "--source pubsub: the old contract on Redis channel SENSORS_PUBSUB_CHANNEL (at-most-once). "
        "--source mqtt: topics <SENSORS_MQTT_TOPIC_PREFIX>/<sensor> on MQTT_URL (at-least-once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", dest="transport", choices=["stream", "pubsub", "mqtt"], default="stream")
        parser.add_argument("--batch-size", type=int, help="Default: SENSORS_CONSUMER_BATCH_SIZE.")
        parser.add_argument("--batch-ms", type=int, help="Default: SENSORS_CONSUMER_BATCH_MS.")
        parser.add_argument("--redis-url", help="stream, pubsub. Default: REDIS_URL.")
        stream = parser.add_argument_group("stream")
        stream.add_argument("--stream", help="Stream key. Default: SENSORS_STREAM_KEY.")
        stream.add_argument("--group", help="Consumer group. Default: SENSORS_STREAM_GROUP.")
        stream.add_argument("--consumer", help="This consumer's name in the group. Default: the host name.")
        stream.add_argument("--claim-idle-ms", type=int, help="Default: SENSORS_STREAM_CLAIM_IDLE_MS.")
        pubsub = parser.add_argument_group("pubsub")
        pubsub.add_argument("--channel", help="Default: SENSORS_PUBSUB_CHANNEL.")
        mqtt = parser.add_argument_group("mqtt")
        mqtt.add_argument("--mqtt-url", help="Default: MQTT_URL.")
        mqtt.add_argument("--topic-prefix", help="Default: SENSORS_MQTT_TOPIC_PREFIX.")
        mqtt.add_argument("--client-id", help="Names the MQTT session. Default: SENSORS_MQTT_CLIENT_ID.")

    def handle(self, *args, transport, batch_size, batch_ms, **options):
        batch_size = batch_size or settings.SENSORS_CONSUMER_BATCH_SIZE
        batch_ms = batch_ms if batch_ms is not None else settings.SENSORS_CONSUMER_BATCH_MS
        if batch_size < 1 or batch_ms < 0:
            raise CommandError("--batch-size must be at least 1 and --batch-ms at least 0.")
        transports = {"stream": self._stream, "pubsub": self._pubsub, "mqtt": self._mqtt}
        consume, batcher_options = transports[transport](batch_size=batch_size, batch_ms=batch_ms, **options)
        stopper = Stopper()
        stopper.install()
        batcher = Batcher(
            transport=Transport(transport),
            batch_size=batch_size,
            max_wait=batch_ms / 1000,
            stopper=stopper,
            **batcher_options,
        )
        with gc_tuned():  # a third of the stream consumer's CPU went to the cycle collector (docs/benchmarks.md)
            consume(batcher=batcher, stopper=stopper)
        total = batcher.total
        self.stdout.write(
            f"Stopped: {total.received} received, {total.stored} stored, {total.duplicates} duplicates, "
            f"{total.rejected} rejected."
        )

    def _redis_url(self, redis_url: str | None) -> str:
        redis_url = redis_url or settings.REDIS_URL
        if not redis_url:
            raise CommandError("No Redis configured: set REDIS_URL or pass --redis-url.")
        return redis_url

    def _stream(self, *, redis_url, stream, group, consumer, claim_idle_ms, batch_size, **options):
        redis_url = self._redis_url(redis_url)
        claim_idle_ms = claim_idle_ms if claim_idle_ms is not None else settings.SENSORS_STREAM_CLAIM_IDLE_MS
        if claim_idle_ms < 0:
            raise CommandError("--claim-idle-ms must be at least 0.")
        stream_options = StreamOptions(
            stream=stream or settings.SENSORS_STREAM_KEY,
            group=group or settings.SENSORS_STREAM_GROUP,
            consumer=consumer or settings.SENSORS_STREAM_CONSUMER or default_consumer_name(),
            count=batch_size,
            claim_idle_ms=claim_idle_ms,
            trim=settings.SENSORS_STREAM_TRIM,
        )
        self.stderr.write(
            f"Consuming Redis stream {stream_options.stream!r} as {stream_options.consumer!r} in group "
            f"{stream_options.group!r}; Ctrl-C or SIGTERM stops."
        )
        batcher_options = {
            # SQLite (embedded mode) takes one writer at a time: there the batches are written in this thread.
            "writers": settings.SENSORS_STREAM_WRITERS if connection.vendor == "postgresql" else 0,
            "text_values": True,  # stream fields are text: a value may be a number or numeric text there
        }
        return partial(stream_consume, redis_url=redis_url, options=stream_options), batcher_options

    def _pubsub(self, *, redis_url, channel, **options):
        redis_url = self._redis_url(redis_url)
        channel = channel or settings.SENSORS_PUBSUB_CHANNEL
        self.stderr.write(f"Consuming Redis pub/sub channel {channel!r}; Ctrl-C or SIGTERM stops.")
        return partial(pubsub_consume, redis_url=redis_url, channel=channel), {}

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
        consume = partial(
            mqtt_consume,
            url=url,
            topic_prefix=prefix,
            client_id=client_id,
            session_expiry=settings.SENSORS_MQTT_SESSION_EXPIRY,
        )
        return consume, {}
