"""The jobs page (`/dashboard/jobs/`): every background job with its state, progress, message, who started it, its
times and why it failed; and the small JSON answer (`/dashboard/jobs/status/`) that the page, and the job progress
bar of any page that starts a job (`templates/common/job_progress.html`), poll to update without reloading."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.models import Job
from common.selectors import job_kinds, job_list, jobs_get_many
from dashboard.access import reader_required
from dashboard.forms import JobFilterForm

PAGE_SIZE = 50
MAX_IDS = 50  # ids one status request may ask for


def _filtered(request: HttpRequest) -> tuple[JobFilterForm, Any]:
    form = JobFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    return form, job_list(state=filters.get("state") or None, kind=filters.get("kind") or None)


def _time(value: Any) -> str | None:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else None


def job_as_dict(job: Job) -> dict[str, Any]:
    """What the jobs page and the progress bars show of a job (the JSON of `/dashboard/jobs/status/`)."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "label": job.label or job.kind,
        "state": job.state,
        "state_label": job.get_state_display(),
        "active": job.is_active,
        "percent": job.percent,
        "done": job.done,
        "total": job.total,
        "message": job.message,
        "error": job.error,
        "result": job.result,
        "started_by": job.started_by.email if job.started_by else "system",
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
    }


@require_GET
@reader_required
def jobs_page(request: HttpRequest) -> HttpResponse:
    """Every background job, newest first, 50 a page, filtered by state and kind (viewer role)."""
    form, jobs = _filtered(request)
    page = Paginator(jobs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "jobs": [job_as_dict(job) for job in page.object_list],
        "kinds": job_kinds(),
        "query": request.GET.urlencode(),
    }
    return render(request, "dashboard/jobs.html", context)


@never_cache
@require_GET
@reader_required
def jobs_status(request: HttpRequest) -> JsonResponse:
    """`?id=<job id>` (repeatable, at most 50): those jobs; otherwise the jobs page's rows for the same filters and
    page. `{"jobs": [...]}`, each as `job_as_dict`; unknown ids are left out (viewer role)."""
    ids = request.GET.getlist("id")[:MAX_IDS]
    if ids:
        jobs = jobs_get_many(ids=ids)
    else:
        _, query = _filtered(request)
        jobs = list(Paginator(query, PAGE_SIZE).get_page(request.GET.get("page")).object_list)
    return JsonResponse({"jobs": [job_as_dict(job) for job in jobs]})
