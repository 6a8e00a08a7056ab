"""Latency of the embedded mode's channel layer (common/sqlite_layer.py): a group message sent by one layer
instance and received by another on the same SQLite file, as between the simulator's process and the web process.

    DJANGO_SETTINGS_MODULE=config.settings.dev .venv/bin/python -m bench.embedded_layer [--messages 100]

Prints the median, p99 and maximum of the send-to-receive times, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import django


async def measure(messages: int, gap: float) -> list[float]:
    from common.sqlite_layer import SQLiteChannelLayer

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "channels.sqlite3"
        sender, receiver = SQLiteChannelLayer(path), SQLiteChannelLayer(path)
        channel = await receiver.new_channel()
        await receiver.group_add("bench", channel)
        times = []
        for number in range(messages):
            started = time.perf_counter()
            await sender.group_send("bench", {"type": "bench.message", "number": number})
            await receiver.receive(channel)
            times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(gap)  # readings arrive spread out, not back to back
        await receiver.flush()
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.013, help="seconds between two messages")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    django.setup()
    times = asyncio.run(measure(args.messages, args.gap))
    p99 = times[min(len(times) - 1, round(len(times) * 0.99) - 1)]
    print(
        f"embedded layer, {len(times)} group messages between two processes' layers on one file: "
        f"median {statistics.median(times):.1f} ms, p99 {p99:.1f} ms, max {times[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
