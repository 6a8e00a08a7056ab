"""Background jobs for every app: queueing a Celery task by name (`job_enqueue`) and the one job mechanism for long
tasks (docs/development.md, "Long tasks as jobs").

The toolkit, in the order a long task meets it:

- A service that runs long takes `progress: ProgressCallback | None = None` (keyword-only) and calls
  `progress(done, total, message)` now and then (`total` None while unknown). It knows nothing of Celery, tqdm or
  jobs.
- The page or API that starts it calls `job_start(kind=..., task=..., kwargs=..., lock_key=..., user=...)`: the job
  is recorded (a `common.models.Job` row, state queued) and its task queued by name after commit. A second start
  of the same `kind` with the same `lock_key` while one is queued or running raises `JobRefused` (HTTP 409).
- The Celery task wraps the service call in `job_run(self.request.id, lambda progress: ..., kind=...)`: the job
  turns running, its progress is recorded (percent, message) where the jobs page, the page that started it and the
  admin read it, and it ends succeeded with the summary the work returned, or failed with a readable reason.
- A command gives the service `tqdm_progress(...)`'s callback: the same protocol, drawn as a tqdm bar.
- `jobs_reap` (the `common.reap_jobs` task, every minute) marks failed the jobs whose worker died, which frees
  their lock key: a running job whose heartbeat stopped for `JOBS_STALE_SECONDS`, a job Celery recorded as failed
  or revoked before it could say so itself, a job no worker took within `JOBS_QUEUED_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import IO, Any

from celery import current_app
from celery.exceptions import Retry
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from rest_framework import serializers, status

from common.exceptions import ApplicationError
from common.models import Job

logger = logging.getLogger(__name__)

# progress(done, total, message): `total` None while unknown. Called now and then, never per row.
ProgressCallback = Callable[[int, int | None, str], None]


class ProgressThrottle:
    """A `ProgressCallback` that passes calls on to `progress` at most every `interval` seconds (and always with
    `force=True`, for the last one), so a service may report per row or per page and stay cheap."""

    def __init__(self, progress: ProgressCallback | None, *, interval: float = 0.5) -> None:
        self._progress = progress
        self._interval = interval
        self._last = -math.inf

    def __call__(self, done: int, total: int | None, message: str, *, force: bool = False) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if force or now - self._last >= self._interval:
            self._last = now
            self._progress(done, total, message)


def no_progress(done: int, total: int | None, message: str) -> None:
    """The `ProgressCallback` of a service called without one (`progress = progress or no_progress`)."""


class JobRefused(ApplicationError):
    """A job of this kind with this lock key is already queued or running (HTTP 409 `job_refused`)."""

    def __init__(self, detail: str, *, running: Job) -> None:
        super().__init__(detail, code="job_refused", status_code=status.HTTP_409_CONFLICT)
        self.running = running


def job_enqueue(
    *,
    task: str,
    kwargs: dict[str, Any] | None = None,
    queue: str | None = None,
    kwargsrepr: str | None = None,
    after_commit: bool = True,
    job_id: str | None = None,
) -> str:
    """Queue the Celery task named `task` with `kwargs` and return its job id (the Celery task id, known before the
    message is sent, so that the caller can answer with it at once; `job_id` chooses it).

    By default the message is sent once the current transaction commits (at once when none is open): a worker
    never picks up a job whose rows it cannot see yet, and a rolled-back request queues nothing. `after_commit=False`
    sends it now (for callers that already run after commit). `queue` overrides the task's route; `kwargsrepr` is
    what Celery logs and stores instead of the repr of `kwargs` (for large arguments).

    Tasks are sent by name, never imported: the web process then never loads a task's code (detection's loads
    stumpy, which takes seconds), and an app queues another's tasks without importing that app. Long tasks that
    people follow are started with `job_start` instead, which records them as jobs.
    """
    job_id = job_id or str(uuid.uuid4())
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


# ------------------------------------------------------------------------------
# Starting a job
# ------------------------------------------------------------------------------


def job_start(
    *,
    kind: str,
    task: str,
    kwargs: dict[str, Any],
    lock_key: str | None = None,
    user: Any = None,
    label: str = "",
    queue: str | None = None,
) -> str:
    """Record a job of `kind` (state queued) and queue the Celery task named `task` with `kwargs` once the current
    transaction commits; return the job id (the Celery task id).

    Raises `JobRefused` when a job of the same `kind` with the same non-None `lock_key` is queued or running, in
    any process (the database's partial unique index decides, so two starts racing each other cannot both win).
    A stale job holding the lock (its worker died) is first marked failed (`jobs_reap`), so it does not lock
    forever. `user` (who started it) is shown on the jobs page; None for the system."""
    if lock_key is not None:
        jobs_reap(kind=kind, lock_key=lock_key)
    job_id = str(uuid.uuid4())
    started_by = user if getattr(user, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            Job.objects.create(
                id=job_id, kind=kind, task=task, label=label[:200], lock_key=lock_key, started_by=started_by
            )
    except IntegrityError:
        running = Job.objects.filter(kind=kind, lock_key=lock_key, state__in=Job.ACTIVE_STATES).first()
        if running is None:  # it ended between our insert and this read: the caller may simply try again
            raise JobRefused(
                f"Another {label or kind} job was just running; try again.", running=Job(kind=kind)
            ) from None
        raise JobRefused(_refusal(running), running=running) from None
    job_enqueue(task=task, kwargs=kwargs, queue=queue, job_id=job_id)
    return job_id


def _refusal(running: Job) -> str:
    since = timezone.localtime(running.started_at or running.created_at)
    what = running.label or running.kind
    return f"{what} is already {running.state} (job {running.id}, since {since:%Y-%m-%d %H:%M:%S}): wait until it ends."


# ------------------------------------------------------------------------------
# Running a job (inside its Celery task)
# ------------------------------------------------------------------------------


class _Recorder:
    """The `ProgressCallback` of a running job. Calls only note the latest values in memory (cheap, any thread);
    a background thread with its own database connection writes them a few times a second and refreshes the
    heartbeat. Writing on another connection makes progress visible at once even when the service calls
    `progress` inside its own long transaction (the ECB history import is one), and never slows the work down."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.done = 0
        self.total: int | None = None
        self.message = ""
        self.version = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"job-{job_id[:8]}", daemon=True)

    def __call__(self, done: int, total: int | None, message: str) -> None:
        with self._lock:
            self.done, self.total, self.message = int(done), total, message[:500]
            self.version += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "done": self.done,
                "total": self.total,
                "percent": _percent(self.done, self.total),
                "message": self.message,
            }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        interval: float = settings.JOBS_PROGRESS_INTERVAL
        heartbeat: float = settings.JOBS_HEARTBEAT_SECONDS
        written, beat = 0, time.monotonic()
        try:
            while not self._stop.wait(interval):
                if self.version == written and time.monotonic() - beat < heartbeat:
                    continue
                version = self.version
                fields = self.snapshot() if version != written else {}
                try:
                    Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING).update(
                        heartbeat_at=timezone.now(), **fields
                    )
                except DatabaseError as exc:  # SQLite busy with the work's own write: the next tick writes it
                    logger.debug("job %s: progress not written (%s)", self.job_id, exc)
                    continue
                written, beat = version, time.monotonic()
        finally:
            connections.close_all()  # this thread's own connections


def _percent(done: int, total: int | None) -> int | None:
    if not total or total <= 0:
        return None
    return max(0, min(100, int(done * 100 // total)))


def job_run(
    job_id: str | None,
    work: Callable[[ProgressCallback], Mapping[str, Any] | None],
    *,
    kind: str,
    task: str = "",
    label: str = "",
    lock_key: str | None = None,
) -> dict[str, Any]:
    """Run `work(progress)` as the job `job_id` (the task's `self.request.id`) and return its summary.

    - The job turns running (a job queued by beat or `job_enqueue` rather than `job_start` is recorded here, with
      `kind`, `label` and `lock_key`; if its lock is held, it is recorded as failed with the reason and not run).
    - `progress(done, total, message)` records percent and message, and a heartbeat keeps the job from looking
      lost (`jobs_reap`) while it runs.
    - The dict `work` returns is stored as the job's result (JSON) and returned; the job is succeeded at 100 %.
    - An exception marks the job failed with a readable reason (an `ApplicationError`'s detail, which says what
      was wrong in words; `<Type>: <message>` for anything else) and is raised again, for Celery to record.
    - `celery.exceptions.Retry` (the task called `self.retry`) puts the job back to queued with the reason.
    - A job delivered again after it ended is not run twice: its stored result is returned (a late-acknowledged
      task whose worker died after finishing), or `{"error": reason}` when it had failed or been given up
      (`jobs_reap`). One delivered again while marked running (its pool process was killed: the baseline tasks
      are acknowledged late) runs again from the start.
    """
    job_id = job_id or str(uuid.uuid4())
    claimed = _job_claim(job_id, kind=kind, task=task, label=label, lock_key=lock_key)
    if isinstance(claimed, dict):
        return claimed
    recorder = _Recorder(job_id)
    recorder.start()
    try:
        outcome = work(recorder)
    except Retry as exc:
        recorder.stop()
        reason = str(exc.exc) if exc.exc is not None else str(exc)
        # Only a job still running goes back to the queue: an eager retry (tests) has already run to its end.
        Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(
            state=Job.State.QUEUED, message=f"Waiting to retry: {reason}"[:500], heartbeat_at=timezone.now()
        )
        raise
    except BaseException as exc:
        recorder.stop()
        _job_finish(job_id, state=Job.State.FAILED, error=_reason(exc), progress=recorder.snapshot())
        raise
    recorder.stop()
    result = _jsonable(dict(outcome or {}))
    final = recorder.snapshot()
    final.update(percent=100, done=max(final["done"], final["total"] or 0))
    _job_finish(job_id, state=Job.State.SUCCEEDED, result=result, progress=final)
    return result


def _job_claim(job_id: str, *, kind: str, task: str, label: str, lock_key: str | None) -> Job | dict[str, Any]:
    """The job turned running, or what the task returns instead of running it (a dict)."""
    now = timezone.now()
    running = {"state": Job.State.RUNNING, "started_at": now, "heartbeat_at": now, "finished_at": None, "error": ""}
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        if lock_key is not None:
            jobs_reap(kind=kind, lock_key=lock_key)
        try:
            with transaction.atomic():
                return Job.objects.create(id=job_id, kind=kind, task=task, label=label, lock_key=lock_key, **running)
        except IntegrityError:
            holder = Job.objects.filter(kind=kind, lock_key=lock_key, state__in=Job.ACTIVE_STATES).first()
            reason = "refused: " + (_refusal(holder) if holder else "another job held its lock")
            Job.objects.create(
                id=job_id,
                kind=kind,
                task=task,
                label=label,
                lock_key=lock_key,
                state=Job.State.FAILED,
                error=reason,
                finished_at=now,
            )
            logger.warning("job %s (%s) %s", job_id, kind, reason)
            return {"error": reason}
    if job.state == Job.State.SUCCEEDED:
        return dict(job.result or {})
    if job.state == Job.State.FAILED:  # given up (jobs_reap) or refused: another job may hold its lock by now
        logger.warning("job %s (%s) not run: it had ended: %s", job_id, job.kind, job.error)
        return {"error": job.error or "given up"}
    again = job.state == Job.State.RUNNING
    Job.objects.filter(pk=job_id).update(
        **running, message="Started again: the worker running it was lost." if again else job.message
    )
    return job


def _job_finish(
    job_id: str,
    *,
    state: str,
    error: str = "",
    result: dict[str, Any] | None = None,
    progress: dict[str, Any] | None = None,
) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"state": state, "error": error[:10_000], "heartbeat_at": now, "finished_at": now}
    if result is not None:
        fields["result"] = result
    if progress is not None:
        fields.update(progress)
    Job.objects.filter(pk=job_id).update(**fields)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ApplicationError):
        return exc.detail
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """The summary as JSON would store it (dates, decimals and sets as text or lists)."""
    import json

    def default(obj: Any) -> Any:
        if isinstance(obj, set | frozenset | tuple):
            return sorted(obj) if isinstance(obj, set | frozenset) else list(obj)
        return DjangoJSONEncoder().default(obj)

    loaded: dict[str, Any] = json.loads(json.dumps(value, default=default))
    return loaded


# ------------------------------------------------------------------------------
# Lost jobs
# ------------------------------------------------------------------------------


def jobs_reap(*, kind: str | None = None, lock_key: str | None = None, now: Any = None) -> int:
    """Mark failed, with the reason, every queued or running job (of `kind` with `lock_key` when given) that no
    worker will finish, and return how many; their lock keys are free again. A job is lost when:

    - it runs but its heartbeat (every `JOBS_HEARTBEAT_SECONDS` while its task runs) stopped for more than
      `JOBS_STALE_SECONDS`: its worker was killed or the machine went down;
    - Celery's result backend says its task failed or was revoked while the job never said so (the worker's
      main process records `WorkerLostError` when a pool process dies; a task that failed before `job_run`);
    - it was queued more than `JOBS_QUEUED_TIMEOUT_SECONDS` ago and no worker took it (its task, if it comes
      after all, sees the job given up and does not run)."""
    from django_celery_results.models import TaskResult

    now = now or timezone.now()
    active = Job.objects.filter(state__in=Job.ACTIVE_STATES)
    if kind is not None:
        active = active.filter(kind=kind, lock_key=lock_key)
    stale_beat = now - timedelta(seconds=settings.JOBS_STALE_SECONDS)
    queued_limit = now - timedelta(seconds=settings.JOBS_QUEUED_TIMEOUT_SECONDS)
    reaped = 0
    lost = (
        active.filter(state=Job.State.RUNNING)
        .annotate(last_sign=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(last_sign__lt=stale_beat)
    )
    for job in lost:
        since = timezone.localtime(job.heartbeat_at or job.started_at or job.created_at)
        reaped += _give_up(
            job,
            f"Lost: no sign of life from its worker since {since:%Y-%m-%d %H:%M:%S} "
            "(the worker stopped or was killed).",
            now,
        )
    failed = dict(
        TaskResult.objects.filter(task_id__in=active.values("id"), status__in=["FAILURE", "REVOKED"]).values_list(
            "task_id", "result"
        )
    )
    for failed_job in active.filter(pk__in=list(failed)):
        reason = f"The worker reported the task failed: {_celery_error(failed[failed_job.pk])}"
        reaped += _give_up(failed_job, reason, now)
    for queued_job in active.filter(state=Job.State.QUEUED, created_at__lt=queued_limit):
        reaped += _give_up(
            queued_job,
            f"Never started: no worker took it within {settings.JOBS_QUEUED_TIMEOUT_SECONDS // 60} minutes.",
            now,
        )
    return reaped


def _give_up(job: Job, reason: str, now: Any) -> int:
    updated: int = Job.objects.filter(pk=job.pk, state=job.state).update(
        state=Job.State.FAILED, error=reason, finished_at=now
    )
    if updated:
        logger.warning("job %s (%s) given up: %s", job.pk, job.kind, reason)
    return updated


def _celery_error(raw: str | None) -> str:
    import json

    try:
        data = json.loads(raw or "")
    except ValueError:
        return (raw or "unknown error")[:500]
    if isinstance(data, dict):
        return f"{data.get('exc_type', 'Error')}: {data.get('exc_message', '')}"[:500]
    return str(data)[:500]


def jobs_prune(*, now: Any = None) -> int:
    """Delete the jobs that ended more than `JOBS_KEEP_DAYS` days ago (with their files); how many."""
    limit = (now or timezone.now()) - timedelta(days=settings.JOBS_KEEP_DAYS)
    deleted, _ = Job.objects.filter(state__in=[Job.State.SUCCEEDED, Job.State.FAILED], finished_at__lt=limit).delete()
    return deleted


# ------------------------------------------------------------------------------
# Commands: the same protocol as a tqdm bar
# ------------------------------------------------------------------------------


@contextmanager
def tqdm_progress(
    *, file: IO[str] | Any, unit: str = "it", disable: bool = False, scale: bool = False, desc: str = ""
) -> Iterator[ProgressCallback]:
    """A `ProgressCallback` drawn as a tqdm bar on `file` (a command's stderr), closed on exit. `scale` shows
    large counts as k/M (bytes, say)."""
    from tqdm import tqdm

    if hasattr(file, "ending"):  # Django's OutputWrapper would end each of tqdm's redraws with a newline
        file = _RawWriter(file)
    with tqdm(unit=unit, unit_scale=scale, file=file, disable=disable, desc=desc or None) as bar:

        def progress(done: int, total: int | None, message: str) -> None:
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)
            bar.set_postfix_str(message, refresh=False)

        yield progress


class _RawWriter:
    """A command's OutputWrapper written as is: tqdm redraws its line with carriage returns."""

    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")

    def flush(self) -> None:
        self.wrapper.flush()


# ------------------------------------------------------------------------------
# Reading jobs (the progress endpoints of the API)
# ------------------------------------------------------------------------------


class JobProgressSerializer(serializers.Serializer):  # type: ignore[type-arg]  # generic only in DRF's stubs: Serializer[Any] fails at runtime
    state = serializers.CharField(help_text="PENDING, STARTED, PROGRESS, RETRY, SUCCESS or FAILURE.")
    complete = serializers.BooleanField(help_text="False while the job waits for a retry.")
    success = serializers.BooleanField(allow_null=True)
    progress = serializers.DictField(help_text="`current`, `total`, `percent`, `description`.")
    result = serializers.JSONField(required=False, help_text="The job's summary, or the reason it failed.")


def job_progress(*, job_id: str, kinds: Collection[str]) -> dict[str, Any] | None:
    """The state and progress of the job `job_id` in the shape the API's job endpoints have always answered
    (celery-progress's, kept for clients), or None when there is no job of `kinds` with this id."""
    job = Job.objects.filter(pk=job_id, kind__in=list(kinds)).first()
    return None if job is None else job_progress_info(job)


def job_progress_info(job: Job) -> dict[str, Any]:
    """A job in the API's progress shape: `state` PENDING (queued), RETRY (queued again after a failed try),
    STARTED (running, no progress yet), PROGRESS, SUCCESS or FAILURE."""
    if job.state == Job.State.QUEUED:
        state = "RETRY" if job.started_at else "PENDING"
    elif job.state == Job.State.RUNNING:
        state = "PROGRESS" if job.percent is not None or job.message else "STARTED"
    else:
        state = "SUCCESS" if job.state == Job.State.SUCCEEDED else "FAILURE"
    complete = job.state in (Job.State.SUCCEEDED, Job.State.FAILED)
    percent = job.percent if job.percent is not None else (100 if complete else 0)
    info: dict[str, Any] = {
        "state": state,
        "complete": complete,
        "success": None if not complete else job.state == Job.State.SUCCEEDED,
        "progress": {
            "current": job.done,
            "total": job.total if job.total is not None else 100,
            "percent": float(percent),
            "description": job.message,
        },
    }
    if complete:
        info["result"] = job.result if job.state == Job.State.SUCCEEDED else job.error
    return info
