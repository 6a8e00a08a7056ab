"""The CSV upload page (`/dashboard/import/`, SPEC §3): operators upload a file of readings, `import_readings` runs
it as a background job, and the page shows the job's progress bar and then its summary (stored, duplicates, bad
rows with their line numbers)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from common.exceptions import ApplicationError
from common.jobs import JobRefused
from common.models import Job
from common.selectors import job_list
from dashboard.access import operator_required
from dashboard.forms import CsvUploadForm
from dashboard.views.jobs import job_as_dict
from sensors.services.csv_import import IMPORT_TASK, readings_import_start

RECENT = 10


@require_http_methods(["GET", "POST"])
@operator_required
def import_page(request: HttpRequest) -> HttpResponse:
    """GET: the upload form, the job `?job=<id>` with its progress and summary, and the recent imports. POST: start
    the import job and come back to the page with its id (operators and staff; viewers get 403)."""
    form = CsvUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job_id = readings_import_start(
                name=upload.name,
                content=upload.read(),
                sensor_key=form.cleaned_data["sensor"] or None,
                delimiter=form.cleaned_data["delimiter"],
                user=request.user,
            )
        except JobRefused as exc:
            form.add_error(None, exc.detail)
        except ApplicationError as exc:
            if not exc.fields:
                form.add_error(None, exc.detail)
            for field, errors in exc.fields.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            return redirect(f"{reverse('dashboard:import')}?job={job_id}")
    job = Job.objects.filter(pk=request.GET.get("job", ""), kind=IMPORT_TASK).select_related("started_by").first()
    context = {
        "form": form,
        "job": job_as_dict(job) if job else None,
        "recent": [job_as_dict(row) for row in job_list(kind=IMPORT_TASK)[:RECENT]],
        "max_bytes": settings.CSV_UPLOAD_MAX_BYTES,
    }
    return render(request, "dashboard/import.html", context, status=400 if form.errors else 200)
