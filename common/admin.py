"""Admin pieces more than one app uses, and the jobs (read-only: only `common.jobs` writes them)."""

from collections.abc import Sequence
from datetime import datetime
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


class DropdownFilter(admin.RelatedOnlyFieldListFilter):
    """A related-field filter drawn as one drop-down list instead of a link per choice: the exchange rates' 170
    currencies made a column about 5,000 px tall. Only values that rows use are offered."""

    template = "admin/dropdown_filter.html"


CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 160, 4


def admin_line_chart(series: Sequence[tuple[datetime, float]], *, label: str) -> str:
    """A server-drawn SVG line of (time, value) points, oldest first, with the range of values and of times written
    beside it: no JavaScript, so it shows in any admin page. "No readings yet." when `series` is empty."""
    if not series:
        return "No readings yet."
    values = [value for _, value in series]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    first, last = series[0][0].timestamp(), series[-1][0].timestamp()
    duration = (last - first) or 1.0
    inner_w, inner_h = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    points = " ".join(
        f"{CHART_PAD + (moment.timestamp() - first) / duration * inner_w:.1f},"
        f"{CHART_PAD + (1 - (value - low) / span) * inner_h:.1f}"
        for moment, value in series
    )
    return format_html(
        '<figure class="admin-chart" style="margin:0">'
        '<svg role="img" aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}" '
        'xmlns="http://www.w3.org/2000/svg" style="max-width:100%;height:auto;border:1px solid #ccc">'
        '<polyline fill="none" stroke="#0b6bcb" stroke-width="1.5" points="{}"/></svg>'
        "<figcaption>{} readings from {} to {} UTC; values {} to {}.</figcaption></figure>",
        label,
        CHART_WIDTH,
        CHART_HEIGHT,
        CHART_WIDTH,
        CHART_HEIGHT,
        points,
        len(series),
        series[0][0].strftime("%Y-%m-%d %H:%M:%S"),
        series[-1][0].strftime("%Y-%m-%d %H:%M:%S"),
        f"{low:.4g}",
        f"{high:.4g}",
    )


def rounded(value: float | None, places: int = 1) -> str:
    """A level or distance as the admin shows it: `places` decimals, "-" for none."""
    return "-" if value is None else f"{value:.{places}f}"


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
