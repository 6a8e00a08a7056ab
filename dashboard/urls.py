from django.urls import path

from dashboard.views import imports, jobs

app_name = "dashboard"

urlpatterns = [
    path("jobs/", jobs.jobs_page, name="jobs"),
    path("jobs/status/", jobs.jobs_status, name="jobs-status"),
    path("import/", imports.import_page, name="import"),
]
