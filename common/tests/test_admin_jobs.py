"""The admin lists jobs (read-only) with their state and a progress bar."""

import pytest
from django.urls import reverse

from common.models import Job

pytestmark = pytest.mark.django_db


def test_staff_see_jobs_with_state_and_progress_and_cannot_change_them(client, staff_user):
    Job.objects.create(id="running", kind="sensors.import_readings", label="CSV import", state="running", percent=35)
    Job.objects.create(id="broken", kind="rates.update_rates", label="Rates", state="failed", error="No provider")
    client.force_login(staff_user)
    response = client.get(reverse("admin:common_job_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<progress max="100" value="35" aria-label="35 %"></progress> 35 %' in html
    assert "failed: No provider" in html
    assert "CSV import" in html
    assert client.get(reverse("admin:common_job_change", args=["running"])).status_code == 200
    assert client.get(reverse("admin:common_job_add")).status_code == 403
    assert client.post(reverse("admin:common_job_delete", args=["running"]), {"post": "yes"}).status_code == 403
    assert Job.objects.count() == 2
