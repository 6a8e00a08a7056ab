"""Background jobs for every app: queueing them (`job_enqueue`) and their progress (celery-progress over
django-celery-results) for the job endpoints."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from celery import current_app
from celery.result import AsyncResult
from celery_progress.backend import Progress
from django.db import transaction
from django_celery_results.models import TaskResult
from rest_framework import serializers


def job_enqueue(
    *,
    task: str,
    kwargs: dict[str, Any] | None = None,
    queue: str | None = None,
    kwargsrepr: str | None = None,
    after_commit: bool = True,
) -> str:
    """Queue the Celery task named `task` with `kwargs` and return its job id (the Celery task id, known before the
    message is sent, so that the caller can answer with it at once).

    By default the message is sent once the current transaction commits (at once when none is open): a worker
    never picks up a job whose rows it cannot see yet, and a rolled-back request queues nothing. `after_commit=False`
    sends it now (for callers that already run after commit). `queue` overrides the task's route; `kwargsrepr` is
    what Celery logs and stores instead of the repr of `kwargs` (for large arguments).

    Tasks are sent by name, never imported: the web process then never loads a task's code (detection's loads
    stumpy, which takes seconds), and an app queues another's tasks without importing that app.
    """
    job_id = str(uuid.uuid4())
    options: dict[str, Any] = {"task_id": job_id}
    if queue is not None:
        options["queue"] = queue
    if kwargsrepr is not None:
        options["kwargsrepr"] = kwargsrepr

    def send() -> None:
        current_app.send_task(task, kwargs=kwargs or {}, **options)

    if after_commit:
        transaction.on_commit(send)
    else:
        send()
    return job_id


class JobProgressSerializer(serializers.Serializer):  # type: ignore[type-arg]  # generic only in DRF's stubs: Serializer[Any] fails at runtime
    state = serializers.CharField(help_text="PENDING, STARTED, PROGRESS, RETRY, SUCCESS or FAILURE.")
    complete = serializers.BooleanField(help_text="False while the job waits for a retry.")
    success = serializers.BooleanField(allow_null=True)
    progress = serializers.DictField(help_text="`current`, `total`, `percent`, `description`.")
    result = serializers.JSONField(required=False, help_text="The task's result or error once complete.")


def job_progress(*, job_id: str, task_names: Collection[str]) -> dict[str, Any] | None:
    """The state and progress of the job `job_id`, or None when the id is a job of another task than
    `task_names` (an unknown id is a job still waiting: PENDING)."""
    task_name = TaskResult.objects.filter(task_id=job_id).values_list("task_name", flat=True).first()
    if task_name and task_name not in task_names:
        return None
    info: dict[str, Any] = Progress(AsyncResult(job_id)).get_info()
    if info["state"] == "RETRY":
        # celery-progress calls a retrying task complete; ours is not: the next attempt is scheduled.
        info.update(complete=False, success=None)
    return info
