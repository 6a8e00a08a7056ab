"""The channel-layer plumbing of the broadcasts: group membership and the over-capacity warning."""

from asgiref.sync import async_to_sync

from common.channels import group_has_members


def test_membership_on_the_in_memory_layer_of_embedded_mode():
    from channels.layers import InMemoryChannelLayer

    memory = InMemoryChannelLayer()

    async def check():
        channel = await memory.new_channel()
        assert not await group_has_members(memory, "sensors.1.readings")
        await memory.group_add("sensors.1.readings", channel)
        assert await group_has_members(memory, "sensors.1.readings")

    async_to_sync(check)()


def test_messages_dropped_past_a_channels_capacity_are_logged_as_a_warning(redis_url, caplog):
    """channels-redis drops a group message for a full channel without an error; the settings' logging filter
    makes its INFO note a WARNING that names the group."""
    import asyncio
    import logging

    from channels_redis.core import RedisChannelLayer

    small = RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": 15}], capacity=2)
    group = "sensors.capacity-test.readings"

    async def overfill() -> list[dict]:
        channel = await small.new_channel()
        await small.group_add(group, channel)
        try:
            for n in range(4):
                await small.group_send(group, {"type": "sensors.readings", "n": n})
            return [await asyncio.wait_for(small.receive(channel), timeout=5) for _ in range(2)]
        finally:
            await small.group_discard(group, channel)
            await small.flush()

    with caplog.at_level(logging.WARNING):
        kept = async_to_sync(overfill)()

    assert [message["n"] for message in kept] == [0, 1]  # 2 and 3 were dropped
    dropped = [r for r in caplog.records if getattr(r, "event", None) == "live_messages_dropped"]
    assert [(r.levelname, r.group, r.channels_over_capacity) for r in dropped] == [
        ("WARNING", group, 1),
        ("WARNING", group, 1),
    ]
    assert "live messages dropped: 1 of 1 channels over capacity in group " + group in caplog.text
