"""The time partitions of `sensors_reading` on PostgreSQL, managed by pg_partman (migration 0006).

pg_partman keeps `SENSORS_PARTITION_PREMAKE` partitions ready ahead of the current one and a default partition
that takes a reading no partition covers (an import of last decade's data, a clock far ahead): such a reading is
stored, never refused, and the scheduled `partitions_maintain` moves it into a partition of its own, created then.
On SQLite (embedded mode) the table is plain and these functions do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from sensors.models import Reading

PARENT = f"public.{Reading._meta.db_table}"


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition: its table and the time range [start, end) it holds."""

    name: str
    start: datetime
    end: datetime


@dataclass
class MaintenanceResult:
    created: list[str] = field(default_factory=list)
    moved_from_default: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"created": self.created, "moved_from_default": self.moved_from_default}


def partitioned() -> bool:
    """Whether the readings table is partitioned here (PostgreSQL after migration 0006)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [Reading._meta.db_table])
        return bool(cursor.fetchone()[0] == "p")


def partitions_list() -> list[Partition]:
    """The range partitions (not the default one), oldest first; empty where the table is not partitioned."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.partition_tablename, i.child_start_time, i.child_end_time "
            "FROM partman.show_partitions(%s) p, "
            "LATERAL partman.show_partition_info(p.partition_schemaname || '.' || p.partition_tablename) i "
            "ORDER BY i.child_start_time",
            [PARENT],
        )
        return [Partition(name, start, end) for name, start, end in cursor.fetchall()]


def default_partition_rows() -> int:
    """Readings waiting in the default partition for a partition of their own."""
    if not partitioned():
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {Reading._meta.db_table}_default")  # noqa: S608 (model's table)
        return int(cursor.fetchone()[0])


def partitions_maintain() -> MaintenanceResult:
    """Create the partitions due ahead of now, and partitions for the readings that landed in the default partition
    (moved there, in the same transaction). Idempotent; PostgreSQL only (nothing to do on SQLite)."""
    result = MaintenanceResult()
    if not partitioned():
        return result
    before = {partition.name for partition in partitions_list()}
    with transaction.atomic(), connection.cursor() as cursor:
        # The UTC session (Django's) makes the bounds UTC midnights, as the migration made them.
        result.moved_from_default = _default_drain(cursor)
        # Ahead of now even when no reading arrived lately (infinite_time_partitions), as many as the setting says.
        cursor.execute(
            "UPDATE partman.part_config SET premake = %s, infinite_time_partitions = true WHERE parent_table = %s",
            [settings.SENSORS_PARTITION_PREMAKE, PARENT],
        )
        cursor.execute("SELECT partman.run_maintenance(%s, p_analyze := false)", [PARENT])
    result.created = sorted({partition.name for partition in partitions_list()} - before)
    return result


def partitions_create(*, start: datetime, end: datetime) -> list[str]:
    """Create the partitions that cover [start, end) ahead of a bulk load of old data (rows loaded first would go
    to the default partition and need moving); returns the names created. PostgreSQL only."""
    if not partitioned():
        return []
    before = {partition.name for partition in partitions_list()}
    with transaction.atomic(), connection.cursor() as cursor:
        _default_drain(cursor)  # a partition cannot be attached while the default holds rows of its range
        # One instant per day covers every partition interval pg_partman offers (daily and longer).
        cursor.execute(
            "SELECT partman.create_partition_time(%s, ARRAY(SELECT generate_series(%s::timestamptz, "
            "%s::timestamptz, INTERVAL '1 day')), p_analyze := false)",
            [PARENT, start, end],
        )
    return sorted({partition.name for partition in partitions_list()} - before)


def _default_drain(cursor: Any) -> int:
    """Move the default partition's rows into partitions of their own (pg_partman creates the missing ones, a
    batch at a time); returns how many moved. A new partition would otherwise clash with rows of its range still
    in the default one."""
    moved_total = 0
    while True:
        cursor.execute("SELECT partman.partition_data_time(%s, p_batch_count := 100, p_analyze := false)", [PARENT])
        moved = cursor.fetchone()[0] or 0
        moved_total += moved
        if not moved:
            return int(moved_total)
