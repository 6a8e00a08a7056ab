"""Retention of raw readings: drop what is older than `SENSORS_RAW_RETENTION_DAYS` (or a platform's own
`raw_retention_days`), only after the hourly roll-ups of what goes were verified and completed.

Rules (docs/operations.md, "Retention"):

- Nothing goes unless a retention is set: the default keeps raw readings for ever.
- A sensor follows its platform's `raw_retention_days` when set, else the site-wide setting. Cutoffs fall on whole
  UTC hours (`now - days`, floored), so an hour's raw rows go together.
- PostgreSQL: a partition goes whole (`DROP TABLE`, no row deletes, no bloat) once it ends at or before the cutoff
  of every sensor that has rows in it. Sensors on the site-wide retention (or a longer one) lose raw rows by whole
  partitions only, so they keep raw rows up to one partition interval beyond their retention. A platform whose
  retention is shorter than the site-wide one has its rows deleted in batches up to its exact cutoff; a partition
  that a longer-retention platform still holds has the others' old rows deleted in batches.
- SQLite: rows are deleted in batches of `SENSORS_RETENTION_BATCH` up to each sensor's cutoff.
- Before any raw row goes, `rollups_complete` verifies its hours (roll-ups count every raw row).
- Other apps' per-reading rows (detections) follow the same bounds through `SENSORS_RETENTION_HOOKS`; a real run
  that removed anything is reported to `SENSORS_RETENTION_REPORTERS` (a system event) after commit. Sensors may
  not import those apps, hence the hooks, as for ingestion.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.module_loading import import_string

from sensors.ingest.rollups import hour_floor, rollups_complete
from sensors.models import Reading, Sensor
from sensors.services.partitions import Partition, partitions_list

logger = logging.getLogger(__name__)


@dataclass
class RetentionGroup:
    """Sensors sharing one retention: every raw row of theirs before `bound` goes (`bound` ≤ `cutoff`)."""

    days: int
    cutoff: datetime
    bound: datetime
    sensor_ids: list[int]
    platforms: list[str]  # slugs of platforms with their own retention; empty: the site-wide setting
    exact: bool  # rows deleted up to the exact cutoff (else: by whole partitions, rows only where one is held)
    rows: int = 0  # raw rows deleted (or, dry, that would be) in batches
    hooks: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "cutoff": self.cutoff.isoformat(),
            "bound": self.bound.isoformat(),
            "sensors": len(self.sensor_ids),
            "platforms": self.platforms,
            "rows_deleted": self.rows,
            **self.hooks,
        }


@dataclass
class RetentionReport:
    """What one run dropped (or, with `dry_run`, would drop)."""

    dry_run: bool
    now: datetime
    partitions: list[dict[str, Any]] = field(default_factory=list)  # {"name", "start", "end", "rows"}
    groups: list[RetentionGroup] = field(default_factory=list)
    hours_completed: int = 0  # roll-up hours rewritten from raw rows before they went

    @property
    def partition_rows(self) -> int:
        return sum(partition["rows"] for partition in self.partitions)

    @property
    def rows_deleted(self) -> int:
        return sum(group.rows for group in self.groups)

    @property
    def anything(self) -> bool:
        return bool(self.partitions or self.rows_deleted or any(any(g.hooks.values()) for g in self.groups))

    def summary(self) -> str:
        verb = "would drop" if self.dry_run else "dropped"
        parts = [f"{len(self.partitions)} partition(s) ({self.partition_rows:,} raw readings)"]
        parts.append(f"{self.rows_deleted:,} raw readings deleted in batches")
        hooked: dict[str, int] = defaultdict(int)
        for group in self.groups:
            for name, count in group.hooks.items():
                hooked[name] += count
        parts.extend(f"{count:,} {name}" for name, count in sorted(hooked.items()))
        return f"Retention {verb} " + ", ".join(parts) + "."

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "partitions": self.partitions,
            "groups": [group.as_dict() for group in self.groups],
            "hours_completed": self.hours_completed,
        }


RetentionHook = Callable[..., dict[str, int]]


@cache
def retention_hooks() -> tuple[RetentionHook, ...]:
    """`SENSORS_RETENTION_HOOKS`: `hook(sensor_ids=..., bound=..., dry_run=...) -> {"name": count}`."""
    return tuple(import_string(path) for path in settings.SENSORS_RETENTION_HOOKS)


@cache
def retention_reporters() -> tuple[Callable[[RetentionReport], None], ...]:
    return tuple(import_string(path) for path in settings.SENSORS_RETENTION_REPORTERS)


@receiver(setting_changed)
def _hooks_setting_changed(*, setting: str, **_: Any) -> None:
    if setting == "SENSORS_RETENTION_HOOKS":
        retention_hooks.cache_clear()
    elif setting == "SENSORS_RETENTION_REPORTERS":
        retention_reporters.cache_clear()


def _groups(now: datetime, partitions: list[Partition]) -> list[RetentionGroup]:
    """The sensors by effective retention (those kept for ever left out), with their cutoffs and bounds."""
    default_days = settings.SENSORS_RAW_RETENTION_DAYS or None
    by_days: dict[int, tuple[list[int], set[str]]] = {}
    rows = Sensor.objects.values_list("pk", "platform__slug", "platform__raw_retention_days")
    for sensor_id, slug, own_days in rows.order_by("pk"):
        days = own_days or default_days
        if days is None:
            continue
        ids, slugs = by_days.setdefault(days, ([], set()))
        ids.append(sensor_id)
        if own_days:
            slugs.add(slug)
    groups = []
    for days, (ids, slugs) in sorted(by_days.items()):
        cutoff = hour_floor(now - timedelta(days=days))
        # Shorter than the site-wide retention (or none is set): rows go in batches up to the exact cutoff.
        exact = not partitions or default_days is None or days < default_days
        bound = cutoff
        if not exact:
            # Whole partitions only: the start of the partition holding the cutoff.
            bound = next((p.start for p in partitions if p.start <= cutoff < p.end), cutoff)
        groups.append(RetentionGroup(days, cutoff, bound, ids, sorted(slugs), exact))
    return groups


def _partition_rows(name: str, sensor_ids: list[int] | None = None) -> int:
    with connection.cursor() as cursor:
        if sensor_ids is None:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(name)}")  # noqa: S608
        else:
            cursor.execute(
                f"SELECT count(*) FROM {connection.ops.quote_name(name)} WHERE sensor_id = ANY(%s)",  # noqa: S608
                [sensor_ids],
            )
        return int(cursor.fetchone()[0])


def _droppable(partition: Partition, groups: list[RetentionGroup]) -> bool:
    """Whether every sensor with rows in the partition may lose all of them: the ones whose bound is past its end
    may; any other sensor (a longer retention, or none) holding a row there keeps the partition."""
    allowed = {sensor_id for group in groups if group.bound >= partition.end for sensor_id in group.sensor_ids}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {connection.ops.quote_name(partition.name)} "  # noqa: S608
            "WHERE NOT (sensor_id = ANY(%s)))",
            [sorted(allowed)],
        )
        return not cursor.fetchone()[0]


def _delete_batches(sensor_id: int, bound: datetime, batch: int) -> int:
    """Delete one sensor's raw rows before `bound`, `batch` rows per statement (each its own short transaction,
    so the table is never locked long and vacuum keeps up); returns how many went."""
    deleted = 0
    while True:
        older = Reading.objects.filter(sensor_id=sensor_id, timestamp__lt=bound)
        last = older.order_by("timestamp").values_list("timestamp", flat=True)[batch - 1 : batch].first()
        with transaction.atomic():
            if last is None:
                count, _ = older.delete()
                return deleted + count
            count, _ = older.filter(timestamp__lte=last).delete()
        deleted += count


def raw_retention_apply(*, dry_run: bool = False, now: datetime | None = None) -> RetentionReport:
    """Drop (or, with `dry_run`, count) the raw readings past their retention, after completing their roll-ups.

    Guarantees: no raw row goes before `rollups_complete` verified its hour; a partition goes whole only when no
    sensor with rows in it has a retention that still keeps them; roll-ups, anomalies and events are never touched.
    """
    now = now or timezone.now()
    report = RetentionReport(dry_run=dry_run, now=now)
    partitions = partitions_list()
    report.groups = groups = _groups(now, partitions)
    if not groups:
        return report
    batch = settings.SENSORS_RETENTION_BATCH

    for partition in partitions:
        if not any(group.bound >= partition.end for group in groups) or not _droppable(partition, groups):
            continue
        entry = {
            "name": partition.name,
            "start": partition.start.isoformat(),
            "end": partition.end.isoformat(),
            "rows": _partition_rows(partition.name),
        }
        if not dry_run:
            with transaction.atomic():
                report.hours_completed += rollups_complete(start=partition.start, end=partition.end)
                with connection.cursor() as cursor:
                    # Foreign-key checks still deferred in the caller's transaction (rows it wrote) would forbid
                    # the DROP ("pending trigger events"): run them now, then defer again as Django does.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    cursor.execute(f"DROP TABLE {connection.ops.quote_name(partition.name)}")
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            logger.info("retention dropped partition %s", partition.name, extra={"rows": entry["rows"]})
        report.partitions.append(entry)

    for group in groups:
        if dry_run:
            older = Reading.objects.filter(sensor_id__in=group.sensor_ids, timestamp__lt=group.bound)
            for entry in report.partitions:  # counted with their partition, which would be gone by then
                older = older.exclude(timestamp__gte=entry["start"], timestamp__lt=entry["end"])
            group.rows = older.count()
        else:
            report.hours_completed += rollups_complete(end=group.bound, sensor_ids=group.sensor_ids)
            group.rows = sum(_delete_batches(sensor_id, group.bound, batch) for sensor_id in group.sensor_ids)
        for hook in retention_hooks():
            group.hooks.update(hook(sensor_ids=group.sensor_ids, bound=group.bound, dry_run=dry_run))

    if not dry_run and report.anything:
        for reporter in retention_reporters():
            try:
                reporter(report)
            except Exception:
                # The data is gone whatever the report does: a failing reporter is logged, not raised.
                logger.exception("retention reporter failed")
    return report
