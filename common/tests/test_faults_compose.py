"""The production compose file's Redis keeps its data: the stream's unread entries (and Celery's queued jobs) survive
a restart only with persistence on a volume (docs/operations.md, "Guarantees under faults"; the fault suite's
scenario c restarts a Redis configured the same way)."""

from pathlib import Path

import yaml
from django.conf import settings

COMPOSE = Path(settings.BASE_DIR) / "docker-compose.yml"


def test_compose_redis_writes_an_append_only_file_synced_every_second_to_a_named_volume():
    compose = yaml.safe_load(COMPOSE.read_text())
    redis = compose["services"]["redis"]
    command = redis.get("command") or []
    words = command.split() if isinstance(command, str) else list(command)
    options = dict(zip(words[1::2], words[2::2], strict=False)) if words[:1] == ["redis-server"] else {}
    assert (options.get("--appendonly"), options.get("--appendfsync")) == ("yes", "everysec"), command
    data_dir = options.get("--dir", "/data")
    mounts = [volume.split(":") for volume in redis.get("volumes", [])]
    named = [source for source, target, *_ in mounts if target == data_dir]
    assert named, redis.get("volumes")  # a volume at Redis's data directory
    assert named[0] in (compose.get("volumes") or {}), named  # a named one, kept across container re-creation
