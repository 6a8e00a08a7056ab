"""Queueing the baseline jobs from the API: by task name, after commit, with a job id to follow."""

from __future__ import annotations

from common.exceptions import ApplicationError
from common.jobs import job_enqueue
from sensors.models import Sensor

SELECT_BASELINES_TASK = "detection.select_baselines"
AUGMENT_BASELINES_TASK = "detection.augment_baselines"
JOB_TASKS = (SELECT_BASELINES_TASK, AUGMENT_BASELINES_TASK)


def baselines_select_enqueue(*, sensors: list[str] | None = None) -> str:
    """Queue a baseline selection of the sensors with these keys (None: every sensor) once the current
    transaction commits, and return its job id (the Celery task id), whose progress
    `GET /api/v1/detection/jobs/<id>/` shows. Unknown keys are refused (ApplicationError naming them), and
    nothing is queued.

    The task is sent by name (`common.jobs.job_enqueue`), so the web process never imports the task's code (which
    loads stumpy; the `web-no-stumpy` contract in pyproject.toml checks the API's imports)."""
    sensor_ids = None
    if sensors is not None:
        found = dict(Sensor.objects.filter(key__in=sensors).values_list("key", "pk"))
        unknown = sorted(set(sensors) - set(found))
        if unknown:
            shown = ", ".join(repr(key) for key in unknown[:10]) + (" …" if len(unknown) > 10 else "")
            raise ApplicationError(
                f"Unknown sensors: {shown}.",
                code="validation_error",
                fields={"sensors": [f"No sensor {key!r}." for key in unknown[:100]]},
            )
        sensor_ids = sorted(set(found.values()))
    return baselines_job_enqueue(task=SELECT_BASELINES_TASK, sensor_ids=sensor_ids)


def baselines_job_enqueue(*, task: str, sensor_ids: list[int] | None) -> str:
    """Queue the baseline job `task` (one of JOB_TASKS) for these sensors (None: all) after commit; its job id."""
    if task not in JOB_TASKS:
        raise ValueError(f"not a baseline job: {task!r}")
    return job_enqueue(task=task, kwargs={"sensor_ids": sensor_ids})
