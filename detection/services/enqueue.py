"""Starting the baseline jobs from the API and the admin: jobs (common.jobs) queued by task name after commit, with
a job id to follow; one baseline job of a kind at a time."""

from __future__ import annotations

from typing import Any

from common.exceptions import ApplicationError
from common.jobs import job_start
from detection.models import JobRun
from sensors.models import Sensor

SELECT_BASELINES_TASK = "detection.select_baselines"
AUGMENT_BASELINES_TASK = "detection.augment_baselines"
JOB_TASKS = (SELECT_BASELINES_TASK, AUGMENT_BASELINES_TASK)
JOB_LABELS = {
    SELECT_BASELINES_TASK: JobRun.Job.SELECT_BASELINES.label,
    AUGMENT_BASELINES_TASK: JobRun.Job.AUGMENT_BASELINES.label,
}
# Two selections (or augmentations) at once would each choose a baseline for the same sensors and the last one to
# commit would win, with two runs' events interleaved: one of a kind at a time, whatever sensors each covers.
JOB_LOCK = "baselines"


def baselines_select_enqueue(*, sensors: list[str] | None = None, user: Any = None) -> str:
    """Queue a baseline selection of the sensors with these keys (None: every sensor) once the current
    transaction commits, and return its job id (the Celery task id), whose progress
    `GET /api/v1/detection/jobs/<id>/` and the jobs page show. Unknown keys are refused (ApplicationError naming
    them), and nothing is queued; so is a selection while another is queued or running (`JobRefused`, 409).

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
    return baselines_job_enqueue(task=SELECT_BASELINES_TASK, sensor_ids=sensor_ids, user=user)


def baselines_job_enqueue(*, task: str, sensor_ids: list[int] | None, user: Any = None) -> str:
    """Start the baseline job `task` (one of JOB_TASKS) for these sensors (None: all) as a job queued after commit;
    its job id. Raises `JobRefused` while a job of the same kind is queued or running."""
    if task not in JOB_TASKS:
        raise ValueError(f"not a baseline job: {task!r}")
    count = "all sensors" if sensor_ids is None else f"{len(sensor_ids)} sensor{'' if len(sensor_ids) == 1 else 's'}"
    return job_start(
        kind=task,
        task=task,
        kwargs={"sensor_ids": sensor_ids},
        lock_key=JOB_LOCK,
        user=user,
        label=f"{JOB_LABELS[task]} ({count})",
    )
