"""The progress of background jobs (celery-progress over django-celery-results), for every app's job endpoint."""

from __future__ import annotations

from collections.abc import Collection

from celery.result import AsyncResult
from celery_progress.backend import Progress
from django_celery_results.models import TaskResult
from rest_framework import serializers


class JobProgressSerializer(serializers.Serializer):
    state = serializers.CharField(help_text="PENDING, STARTED, PROGRESS, RETRY, SUCCESS or FAILURE.")
    complete = serializers.BooleanField(help_text="False while the job waits for a retry.")
    success = serializers.BooleanField(allow_null=True)
    progress = serializers.DictField(help_text="`current`, `total`, `percent`, `description`.")
    result = serializers.JSONField(required=False, help_text="The task's result or error once complete.")


def job_progress(*, job_id: str, task_names: Collection[str]) -> dict | None:
    """The state and progress of the job `job_id`, or None when the id is a job of another task than
    `task_names` (an unknown id is a job still waiting: PENDING)."""
    task_name = TaskResult.objects.filter(task_id=job_id).values_list("task_name", flat=True).first()
    if task_name and task_name not in task_names:
        return None
    info = Progress(AsyncResult(job_id)).get_info()
    if info["state"] == "RETRY":
        # celery-progress calls a retrying task complete; ours is not: the next attempt is scheduled.
        info.update(complete=False, success=None)
    return info
