"""Admin pieces more than one app uses (no models are registered here)."""

from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet


class EstimatedCountPaginator(Paginator):
    """Counting tens of millions of rows takes seconds on PostgreSQL: an unfiltered list shows the planner's
    estimate instead; a filtered one (one sensor, a search) counts exactly."""

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if connection.vendor == "postgresql" and isinstance(object_list, QuerySet) and not object_list.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > 100_000:
                return int(row[0])
        return super().count


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only a service writes (readings, detections, events, job runs): staff view them; the change page
    shows every field as text."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
