from celery import shared_task

from accounts.services import api_tokens_purge_expired


@shared_task(name="accounts.purge_expired_api_tokens")
def purge_expired_api_tokens() -> int:
    """Daily clean-up of expired API tokens (schedule from migration 0003)."""
    return api_tokens_purge_expired()
