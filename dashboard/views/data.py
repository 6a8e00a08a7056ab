"""The data page (`/dashboard/data/`): operators and staff export the data (then download the file) and import an
archive, both as background jobs (archive/services/jobs.py; docs/archive.md). Viewers get 403."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from archive.services.jobs import EXPORT_TASK, IMPORT_TASK, archive_export_start, archive_import_start, export_file
from common.exceptions import ApplicationError
from common.jobs import JobRefused
from common.models import Job
from dashboard.access import operator_required
from dashboard.forms import ExportForm, ImportForm

RECENT = 15


def _jobs() -> list[Job]:
    return list(Job.objects.filter(kind__in=[EXPORT_TASK, IMPORT_TASK]).select_related("started_by")[:RECENT])


@require_http_methods(["GET", "POST"])
@operator_required
def data_page(request: HttpRequest) -> HttpResponse:
    """GET: the two forms and the recent export and import jobs with their progress (the page refreshes itself
    while one is active). POST `action=export|import`: start the job and come back with `?job=<id>`."""
    action = request.POST.get("action") if request.method == "POST" else None
    export_form = ExportForm(request.POST if action == "export" else None)
    import_form = ImportForm(
        request.POST if action == "import" else None, request.FILES if action == "import" else None
    )
    status = 200
    if action == "export" and export_form.is_valid():
        platform = export_form.cleaned_data["platform"]
        job_id = archive_export_start(
            format=export_form.cleaned_data["format"],
            since=export_form.cleaned_data["since"],
            platform=platform.slug if platform else None,
            user=request.user,
        )
        return redirect(f"{reverse('dashboard:data')}?job={job_id}")
    if action == "import" and import_form.is_valid():
        upload = import_form.cleaned_data["file"]
        try:
            job_id = archive_import_start(
                name=upload.name, chunks=upload.chunks(), merge=import_form.cleaned_data["merge"], user=request.user
            )
        except JobRefused as exc:
            import_form.add_error(None, exc.detail)
            status = 409
        except ApplicationError as exc:
            import_form.add_error(None, exc.detail)
        else:
            return redirect(f"{reverse('dashboard:data')}?job={job_id}")
    if action and status == 200 and (export_form.errors or import_form.errors):
        status = 400
    jobs = _jobs()
    context = {
        "export_form": export_form,
        "import_form": import_form,
        "jobs": jobs,
        "highlight": request.GET.get("job", ""),
        "active": any(job.is_active for job in jobs),
        "export_kind": EXPORT_TASK,
        "downloads": {job.id for job in jobs if job.kind == EXPORT_TASK and export_file(job)},
    }
    return render(request, "dashboard/data.html", context, status=status)


@require_GET
@operator_required
def data_download(request: HttpRequest, job_id: str) -> FileResponse:
    """The file of a succeeded export job (operators and staff)."""
    job = get_object_or_404(Job, pk=job_id, kind=EXPORT_TASK)
    path = export_file(job)
    if path is None:
        raise Http404("This export has no file (not finished, failed, or deleted).")
    name = f"sensorhub-{job.created_at:%Y%m%d-%H%M%S}{Path(path).suffix}"
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)
