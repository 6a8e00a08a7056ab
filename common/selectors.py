"""Reads of the plumbing's rows: the jobs (common.models.Job) for the jobs page, the admin and the API."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from common.models import Job


def job_list(*, state: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    """Jobs newest first, with who started them (one query however many), optionally of one state or kind."""
    jobs = Job.objects.select_related("started_by").order_by("-created_at", "-pk")
    if state:
        jobs = jobs.filter(state=state)
    if kind:
        jobs = jobs.filter(kind=kind)
    return jobs


def jobs_get_many(*, ids: Iterable[str]) -> list[Job]:
    """The jobs with these ids (unknown ids left out), in the order given."""
    wanted = list(dict.fromkeys(ids))
    found = {job.pk: job for job in Job.objects.select_related("started_by").filter(pk__in=wanted)}
    return [found[pk] for pk in wanted if pk in found]


def job_kinds() -> list[str]:
    """The kinds of job recorded, for filters."""
    return sorted(Job.objects.order_by().values_list("kind", flat=True).distinct())
