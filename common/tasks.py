"""Background jobs of the plumbing: giving up lost jobs and deleting old ones."""

from typing import Any

from celery import shared_task

from common.jobs import jobs_prune, jobs_reap


@shared_task(name="common.reap_jobs")
def reap_jobs() -> dict[str, Any]:
    """Mark failed the jobs whose worker died (freeing their locks) and delete the jobs finished more than
    JOBS_KEEP_DAYS ago; every minute by migration 0002."""
    return {"given_up": jobs_reap(), "deleted": jobs_prune()}
