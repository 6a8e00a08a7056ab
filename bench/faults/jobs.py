"""The job scenarios of the fault suite: (e) a Celery worker's pool process killed in the middle of a baseline
selection job, (f) celery beat restarted after admin edits of the periodic tasks. Both run the real processes
(`celery worker`, `celery beat` with django-celery-beat's DatabaseScheduler) against the database Django is set up
on in this process."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.faults.ingest import Outcome
from bench.faults.servers import Process, children, wait_for

JOB_QUEUE = "faults-jobs"


def _sensors_with_history(prefix: str, count: int) -> list[int]:
    """`count` detection sensors with five days of readings each, alternating the seeds' shapes."""
    import numpy as np

    from detection.data import generate_seeds
    from detection.services.settings import detector_settings_ensure
    from sensors.models import Reading, Sensor

    start, step = datetime(2026, 1, 1, tzinfo=UTC), timedelta(minutes=10)
    ids = []
    for index in range(count):
        sensor = Sensor.objects.create(key=f"{prefix}-{index}", detection_enabled=True)
        values = generate_seeds.series(("low", "high")[index % 2], days=5, rng=np.random.default_rng(index))
        Reading.objects.bulk_create(
            Reading(sensor=sensor, timestamp=start + i * step, value=float(v)) for i, v in enumerate(values)
        )
        ids.append(sensor.pk)
    detector_settings_ensure(ids)
    return ids


def worker_kill(
    *, redis_url: str, env: dict[str, str], workdir: Path, prefix: str = "fe", sensors: int = 12
) -> Outcome:
    """(e) A baseline selection job over `sensors` sensors on a real prefork worker (one pool process); once two
    sensors are done, kill -9 of the pool process running it. The job must then be retried (acks_late and
    reject_on_worker_lost: the message goes back to the queue) and the interrupted run marked failed, and no sensor
    may be half-selected (each sensor's step is one transaction) or selected twice.

    Counts are sensors: expected = sensors in the job, stored = sensors selected exactly once (one success or
    critical event each, `last_selection_at` set), lost = sensors never selected, duplicated = sensors selected
    more than once."""
    from celery import current_app
    from django.db import connection

    from detection.models import DetectorSettings, JobRun, SystemEvent
    from detection.services.baselines import baselines_load

    started = time.monotonic()
    baselines_load()
    ids = _sensors_with_history(prefix, sensors)
    worker = Process(
        [
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--concurrency=1",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"{prefix}@%h",
            "--loglevel=INFO",
            f"--queues={JOB_QUEUE}",
        ],  # fmt: skip
        env=env,
        log=workdir / f"{prefix}-worker.log",
    )
    worker.start()
    note = ""
    try:
        wait_for(lambda: current_app.control.ping(timeout=0.5), timeout=120, what="worker answering", interval=0.2)
        job = current_app.send_task("detection.select_baselines", kwargs={"sensor_ids": ids}, queue=JOB_QUEUE)

        def selected() -> int:
            connection.close()
            return SystemEvent.objects.filter(job="select_baselines", sensor_id__in=ids).exclude(kind="info").count()

        wait_for(lambda: selected() >= 2, timeout=120, what="two sensors selected", interval=0.05)
        pool = children(worker.pid)
        killed_after = selected()
        for pid in pool:
            os.kill(pid, signal.SIGKILL)

        def settled() -> bool:
            connection.close()
            return JobRun.objects.filter(task_id=job.id, outcome="succeeded").exists()

        try:
            wait_for(settled, timeout=90, what="the job finished after the kill", interval=0.5)
        except TimeoutError:
            note = "no run of the job finished within 90 s of the kill"
        worker.stop()
    finally:
        worker.close()
    connection.close()
    runs = list(JobRun.objects.filter(task_id=job.id).order_by("started_at").values_list("outcome", flat=True))
    events = {pk: 0 for pk in ids}
    for sensor_id in SystemEvent.objects.filter(job="select_baselines", sensor_id__in=ids).exclude(kind="info") \
            .values_list("sensor_id", flat=True):  # fmt: skip
        events[sensor_id] += 1
    stamped = set(
        DetectorSettings.objects.filter(pk__in=ids, last_selection_at__isnull=False).values_list("pk", flat=True)
    )
    once = sum(1 for pk, n in events.items() if n == 1 and pk in stamped)
    lost = sum(1 for n in events.values() if n == 0)
    twice = sum(1 for n in events.values() if n > 1)
    still_running = runs.count("running")
    notes = [f"killed after {killed_after} of {sensors} sensors; runs of the job: {', '.join(runs) or 'none'}"]
    if note:
        notes.append(note)
    return Outcome(
        "e. worker kill -9 mid-job",
        f"kill -9 of the pool process running detection.select_baselines ({len(pool)} process)",
        sensors,
        once,
        lost,
        twice,
        None,
        time.monotonic() - started,
        "; ".join(notes),
        held=still_running == 0 and "succeeded" in runs,
    )


def beat_restart(*, env: dict[str, str], workdir: Path, queue: str = "faults-beat") -> Outcome:
    """(f) celery beat (DatabaseScheduler) running; an admin edits three periodic tasks (Check detectors: every
    2 s instead of every minute, on its own queue; Fetch external sources: disabled; Purge expired API tokens:
    04:45 instead of 03:30); beat is stopped (SIGTERM, it writes its schedule state back) and started again.

    Counts are edits: expected 3, stored = edits that hold after the restart, lost = edits undone. The edit must also
    be in force: after the restart, beat sends `detection.check_detectors` every 2 s (counted on its queue)."""
    import redis
    from django.conf import settings
    from django.db import connection
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    from config.celery_app import app as celery_app

    started = time.monotonic()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(queue)
    # Beat's first start sends what is due at once (the unedited Check detectors, to the default queue). What it
    # sent there is taken back at the end, so no worker on this broker later gets a stray run of this scenario.
    default_queue = celery_app.conf.task_default_queue
    default_before = broker.llen(default_queue)
    log = workdir / "beat.log"
    beat = Process(
        ["-m", "celery", "-A", "config", "beat", "--loglevel=INFO", f"--schedule={workdir / 'beat-schedule'}"],
        env=env,
        log=log,
    )
    beat.start()
    try:
        # Its banner (printed whatever the log level), then time to load the schedule from the database.
        wait_for(lambda: "beat" in log.read_text(errors="replace"), timeout=60, what="beat started")
        time.sleep(3)
        # The edits, saved as the admin saves them (model forms call save(): django-celery-beat's signals then
        # tell the running beat that the schedule changed).
        every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
        check = PeriodicTask.objects.get(name="Check detectors")
        check.interval, check.queue = every_2s, queue
        check.save()
        fetch = PeriodicTask.objects.get(name="Fetch external sources")
        fetch.enabled = False
        fetch.save()
        purge = PeriodicTask.objects.get(name="Purge expired API tokens")
        at_0445, _ = CrontabSchedule.objects.get_or_create(
            minute="45", hour="4", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        purge.crontab = at_0445
        purge.save()
        time.sleep(6)  # beat looks for changes at least every 5 s (its max interval)
        beat.stop()
        sent_before = broker.llen(queue)
        beat.start()
        restarted = time.monotonic()
        with contextlib.suppress(TimeoutError):  # counted below either way
            wait_for(lambda: broker.llen(queue) - sent_before >= 2, timeout=60, what="sent twice", interval=0.2)
        sent_after, waited = broker.llen(queue) - sent_before, time.monotonic() - restarted
        beat.stop()
    finally:
        beat.close()
        broker.delete(queue)
        # kombu's Redis transport pushes new messages on the left and workers pop from the right: beat's are first.
        sent_to_default = broker.llen(default_queue) - default_before
        if sent_to_default > 0:
            broker.ltrim(default_queue, sent_to_default, -1)
        broker.close()
    connection.close()
    check = PeriodicTask.objects.get(name="Check detectors")
    holds = [
        check.interval_id == every_2s.pk and check.queue == queue,
        not PeriodicTask.objects.get(name="Fetch external sources").enabled,
        PeriodicTask.objects.get(name="Purge expired API tokens").crontab_id == at_0445.pk,
    ]
    return Outcome(
        "f. beat restart",
        "3 admin edits (interval + queue, disabled, crontab), then celery beat SIGTERM + start",
        len(holds),
        sum(holds),
        len(holds) - sum(holds),
        0,
        None,
        time.monotonic() - started,
        f"check_detectors sent {sent_before} times at the edited interval before the restart, {sent_after} in the "
        f"{waited:.0f} s after it (beat's start included)",
        held=sent_after >= 2,
    )
