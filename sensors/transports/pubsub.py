"""The old sensor processor's contract: JSON readings PUBLISHed on the Redis channel `sensor_stream`.

Pub/sub is at-most-once by nature: Redis delivers a message only to subscribers connected at that moment, so
anything published while this consumer is down or reconnecting is gone. Use the stream transport when loss matters.
"""

from __future__ import annotations

import logging

import redis

from sensors.transports.heartbeat import Heartbeat
from sensors.transports.runner import Backoff, Batcher, Stopper

logger = logging.getLogger("sensors.ingest")


def pubsub_consume(*, redis_url: str, channel: str, batcher: Batcher, stopper: Stopper) -> None:
    """Subscribe and feed `batcher` until `stopper` is set; reconnect (with backoff) whenever Redis goes away. While
    subscribed, a heartbeat says so (`sensors.transports.heartbeat`, read by the health check)."""
    backoff = Backoff()
    heartbeat = Heartbeat("pubsub", detail={"channel": channel})
    while not stopper.stopped:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_keepalive=True)
        pubsub: redis.client.PubSub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]  # redis-py leaves Redis.pubsub() unannotated
        try:
            pubsub.subscribe(channel)
            logger.info("subscribed", extra={"channel": channel})
            backoff.reset()
            while not stopper.stopped:
                heartbeat.beat(client)
                message = pubsub.get_message(timeout=min(batcher.time_left(), 0.5))
                if message is not None and message["type"] == "message":
                    batcher.add(message["data"])
                if batcher.due():
                    batcher.flush()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            delay = backoff.next()
            logger.warning("redis unavailable, reconnecting", extra={"error": str(exc), "retry_in": delay})
            batcher.flush()  # what arrived before the outage is still stored
            stopper.wait(delay)
        finally:
            heartbeat.stop()
            try:
                pubsub.close()
                client.close()
            except redis.RedisError:
                pass
    batcher.flush()
