"""After-store hooks: what happens to stored readings once their transaction committed (the live broadcast,
the detection hand-off). `SENSORS_INGEST_HOOKS` names them; a failing hook never undoes or stops ingestion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class StoredReading(NamedTuple):
    """A reading this call stored (duplicates excluded): what the hooks receive."""

    sensor_id: int
    sensor_key: str
    timestamp: datetime
    value: float


@cache
def ingest_hooks() -> tuple[Callable[[list[StoredReading]], None], ...]:
    """The callables of `SENSORS_INGEST_HOOKS`, imported once per process."""
    return tuple(import_string(path) for path in settings.SENSORS_INGEST_HOOKS)


@receiver(setting_changed)
def _hooks_setting_changed(*, setting: str, **_: Any) -> None:
    """A changed SENSORS_INGEST_HOOKS (settings overridden in a test) takes effect at once."""
    if setting == "SENSORS_INGEST_HOOKS":
        ingest_hooks.cache_clear()


def hooks_run(stored: list[StoredReading]) -> None:
    """Hand the stored readings to every hook in turn (called after commit); a hook's error is logged."""
    for hook in ingest_hooks():
        try:
            hook(stored)
        except Exception:
            # A hook (live broadcast, detection hand-off) must never undo or stop ingestion.
            logger.exception("ingest hook failed", extra={"hook": getattr(hook, "__name__", repr(hook))})
