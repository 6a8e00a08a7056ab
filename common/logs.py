"""Log filters of the project's logging configuration (config/settings/base.py, LOGGING)."""

import logging

from django.conf import settings


class RoutineTaskLines(logging.Filter):
    """Drops Celery's "Task … received" and "Task … succeeded" lines (INFO) of the tasks named in
    LOG_QUIET_TASKS: the `detect` worker runs one `detection.detect_readings` per stored batch, many a second, and
    its two lines per batch buried everything else. Anything above INFO (a failure, a retry) passes, and so do the
    lines of every other task."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not isinstance(record.args, dict):
            return True
        return record.args.get("name") not in settings.LOG_QUIET_TASKS
