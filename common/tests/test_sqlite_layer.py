"""The embedded mode's channel layer (common/sqlite_layer.py): group messages between processes through a file.

Two layer instances on one file stand for two processes here; `sensors/tests/test_embedded_live.py` runs the
real processes of `make run`.
"""

import asyncio

import pytest

from common.channels import groups_with_members
from common.sqlite_layer import SQLiteChannelLayer

pytestmark = pytest.mark.asyncio


@pytest.fixture
def layers(tmp_path):
    path = tmp_path / "channels.sqlite3"
    return SQLiteChannelLayer(path), SQLiteChannelLayer(path)


async def test_group_message_reaches_a_member_in_another_layer(layers):
    sender, receiver = layers
    channel = await receiver.new_channel()
    await receiver.group_add("sensors.1.readings", channel)

    assert await groups_with_members(sender, ["sensors.1.readings", "sensors.2.readings"]) == {
        "sensors.1.readings": True,
        "sensors.2.readings": False,
    }
    await sender.group_send("sensors.1.readings", {"type": "sensors.readings", "value": 1.5})
    await sender.group_send("sensors.2.readings", {"type": "sensors.readings", "value": 9.0})
    await sender.group_send("sensors.1.readings", {"type": "sensors.readings", "value": 2.5})

    first = await asyncio.wait_for(receiver.receive(channel), timeout=2)
    second = await asyncio.wait_for(receiver.receive(channel), timeout=2)
    assert [first["value"], second["value"]] == [1.5, 2.5]  # in order, and nothing of the other group
    await receiver.flush()


async def test_a_member_that_left_gets_nothing_and_the_group_is_no_longer_watched(layers):
    sender, receiver = layers
    channel = await receiver.new_channel()
    await receiver.group_add("g", channel)
    await receiver.group_discard("g", channel)

    assert await groups_with_members(sender, ["g"]) == {"g": False}
    await sender.group_send("g", {"type": "x"})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(receiver.receive(channel), timeout=0.3)
    await receiver.flush()


async def test_messages_sent_before_a_process_started_watching_are_not_replayed(layers):
    sender, receiver = layers
    await sender.group_send("g", {"type": "old"})
    channel = await receiver.new_channel()
    await receiver.group_add("g", channel)
    await sender.group_send("g", {"type": "new"})
    assert (await asyncio.wait_for(receiver.receive(channel), timeout=2))["type"] == "new"
    await receiver.flush()
