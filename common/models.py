"""The rows of the one job mechanism (`common/jobs.py`): every long task (CSV import, data export and import,
baseline selection and augmentation, rates updates and history import, HTTP source fetches) is a `Job`."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Job(models.Model):
    """One background job: a Celery task followed by its id, with its progress and how it ended.

    Guarantees:
    - `id` is the Celery task id, known before the message is sent (`common.jobs.job_start`).
    - At most one job of a `kind` with the same non-null `lock_key` is queued or running at a time, across every
      process, on SQLite and PostgreSQL alike (a partial unique index, `common_job_one_active_per_lock`): a job
      that would corrupt data if run twice at once takes a lock key, and a second start is refused.
    - `heartbeat_at` is refreshed while the job runs (`common.jobs.job_run`); a queued or running job whose
      heartbeat stopped (its worker died) is marked failed by `common.jobs.jobs_reap`, which frees its lock.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)

    id = models.CharField(primary_key=True, max_length=64, help_text="The Celery task id.")
    kind = models.CharField(max_length=64, help_text="What the job does, e.g. sensors.import_readings.")
    task = models.CharField(max_length=200, help_text="The name of the Celery task that runs it.")
    label = models.CharField(max_length=200, blank=True, help_text="What the jobs page shows.")
    lock_key = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        help_text="Jobs of one kind with the same lock key never run at once (empty: no lock).",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    percent = models.PositiveSmallIntegerField(null=True, blank=True, help_text="0-100; empty while unknown.")
    done = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="What the job did (its summary), once succeeded.")
    error = models.TextField(blank=True, help_text="Why it failed, in words.")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from its worker.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="common_job_created"),
            models.Index(fields=["state", "created_at"], name="common_job_state"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "lock_key"],
                condition=Q(state__in=["queued", "running"]) & Q(lock_key__isnull=False),
                name="common_job_one_active_per_lock",
            ),
            models.CheckConstraint(
                condition=Q(percent__isnull=True) | Q(percent__lte=100), name="common_job_percent_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label or self.kind} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES


class JobFile(models.Model):
    """A file handed to a job (an uploaded CSV, say), kept in the database so that a worker on another machine, or
    in another container with no shared disk, reads it. Deleted with its job, or by the job once read. Size-limited
    by the page that takes it (`CSV_UPLOAD_MAX_BYTES`)."""

    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255, help_text="The name the file had when uploaded.")
    size = models.PositiveBigIntegerField()
    content = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.size} bytes)"
