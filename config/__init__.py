# Expose the Celery app so that `celery -A config` and shared_task find it.
from .celery_app import app as celery_app

__all__ = ("celery_app",)
