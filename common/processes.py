"""Which processes of the `Procfile` `make run` starts: those the configuration can run.

The Procfile names every process; honcho starts the ones `manage.py list_processes` prints. The consumers of Redis
and MQTT need their server, so they start only when its URL is set (embedded mode has neither).
"""

from collections.abc import Sequence
from pathlib import Path

# Always: pages and sockets, background jobs, detection, schedules, and the simulator that makes the demo move.
BASE_PROCESSES = ("web", "worker", "detect", "beat", "simulate")
# With REDIS_URL: the no-loss stream consumer and the old pub/sub contract's consumer. With MQTT_URL: MQTT's.
REDIS_PROCESSES = ("ingest", "ingest-pubsub")
MQTT_PROCESSES = ("ingest-mqtt",)


def processes_choose(*, redis_url: str, mqtt_url: str) -> list[str]:
    """The names of the processes to start for this configuration, in Procfile order."""
    names = list(BASE_PROCESSES)
    if redis_url:
        names += REDIS_PROCESSES
    if mqtt_url:
        names += MQTT_PROCESSES
    return names


def procfile_names(path: Path) -> list[str]:
    """The process names a Procfile declares (`name: command` lines), in order."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, colon, command = line.partition(":")
        if colon and command.strip() and not line.lstrip().startswith("#"):
            names.append(name.strip())
    return names


def processes_missing(names: Sequence[str], path: Path) -> list[str]:
    """Those of `names` the Procfile at `path` does not declare."""
    declared = set(procfile_names(path))
    return [name for name in names if name not in declared]
