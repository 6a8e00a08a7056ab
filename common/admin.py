"""Admin pieces more than one app uses, and the jobs (read-only: only `common.jobs` writes them)."""

from functools import cached_property

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.utils.html import format_html

from common.models import Job


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


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    """Every background job with its state and progress, as the jobs page (/dashboard/jobs/) shows them."""

    list_display = ["label_or_kind", "state", "progress_bar", "message", "started_by", "created_at", "finished_at"]
    list_filter = ["state", "kind"]
    search_fields = ["id", "label", "kind", "lock_key", "message", "error"]
    list_select_related = ["started_by"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Job._meta.fields]

    @admin.display(description="job", ordering="label")
    def label_or_kind(self, job: Job) -> str:
        return job.label or job.kind

    @admin.display(description="progress", ordering="percent")
    def progress_bar(self, job: Job) -> str:
        if job.state == Job.State.FAILED:
            return format_html('<span title="{}">failed: {}</span>', job.error, job.error[:80])
        if job.percent is None:
            return format_html('<progress aria-label="{}"></progress>', job.state)
        return format_html(
            '<progress max="100" value="{}" aria-label="{} %"></progress> {} %', job.percent, job.percent, job.percent
        )
