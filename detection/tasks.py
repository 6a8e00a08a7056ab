"""Background jobs of the detection app: load arguments, call one service, own the retries.

Services are imported inside the tasks: importing stumpy takes seconds, and processes that only queue these
tasks (web, ingest) import this module too when Celery finds its tasks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_init

from common.jobs import job_run
from detection.services.enqueue import AUGMENT_BASELINES_TASK, JOB_LABELS, JOB_LOCK, SELECT_BASELINES_TASK


@worker_process_init.connect
def _warm_detection(**_: object) -> None:
    """Load stumpy's compiled functions when a worker process starts, not at its first reading."""
    from detection import engine

    engine.warm()


@shared_task(name="detection.detect_readings", ignore_result=True)
def detect_readings(sensors: dict[str, str | None]) -> dict[str, Any]:
    """Detect the new readings of `sensors` (sensor id → earliest new timestamp, ISO 8601), queued by the ingest
    hand-off after each stored batch."""
    from detection.services.detect import readings_detect

    parsed = {int(pk): datetime.fromisoformat(ts) if ts else None for pk, ts in sensors.items()}
    return readings_detect(sensors=parsed).as_dict()


@shared_task(name="detection.check_detectors")
def check_detectors() -> dict[str, Any]:
    """Mark silent sensors not_available and detect readings no hand-off reached (every minute by migration)."""
    from detection.services.detect import detectors_check

    return detectors_check().as_dict()


# The baseline jobs run for minutes. acks_late + reject_on_worker_lost: a worker killed in the middle (kill -9, out
# of memory) leaves the message in the queue, and the job runs again; each sensor's step is one transaction, so
# the interrupted run left no half-written sensor, and the new run marks the interrupted one failed (JobRun).
# A whole worker lost with its main process is redelivered by Redis after the broker's visibility timeout (1 h).
@shared_task(bind=True, name="detection.select_baselines", acks_late=True, reject_on_worker_lost=True)
def select_baselines(self: Task[Any, Any], sensor_ids: list[int] | None = None) -> dict[str, Any]:
    """Baseline selection for `sensor_ids` (all detection-enabled sensors with settings when None); every 15 days
    by migration 0003, or queued by operators. A job (common.jobs, one selection at a time); the JobRun row names
    this task."""
    from detection.services.baselines import baselines_select

    task_id = self.request.id or ""
    return job_run(
        self.request.id,
        lambda progress: baselines_select(sensor_ids=sensor_ids, progress=progress, task_id=task_id).as_dict(),
        **_job(SELECT_BASELINES_TASK, sensor_ids),
    )


@shared_task(bind=True, name="detection.augment_baselines", acks_late=True, reject_on_worker_lost=True)
def augment_baselines(self: Task[Any, Any], sensor_ids: list[int] | None = None) -> dict[str, Any]:
    """Baseline augmentation for `sensor_ids` (all detection-enabled sensors with settings when None); every 30
    days by migration 0004, or queued by operators. A job (common.jobs, one augmentation at a time); the JobRun row
    names this task."""
    from detection.services.baselines import baselines_augment

    task_id = self.request.id or ""
    return job_run(
        self.request.id,
        lambda progress: baselines_augment(sensor_ids=sensor_ids, progress=progress, task_id=task_id).as_dict(),
        **_job(AUGMENT_BASELINES_TASK, sensor_ids),
    )


def _job(task: str, sensor_ids: list[int] | None) -> dict[str, Any]:
    """How a baseline job is recorded when beat, not `baselines_job_enqueue`, queued it."""
    count = "all sensors" if sensor_ids is None else f"{len(sensor_ids)} sensors"
    return {"kind": task, "task": task, "label": f"{JOB_LABELS[task]} ({count})", "lock_key": JOB_LOCK}
