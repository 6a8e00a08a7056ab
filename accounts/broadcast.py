"""Typed channel messages of the accounts app: a change of a user's rights (token revoked, role changed, account
deactivated or deleted) makes that user's open sockets check their rights again (`common.live`, "recheck")."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from common.channels import group_messages_send
from common.live import RECHECK_EVENT, RecheckMessage


def user_group(user_id: int) -> str:
    """The group of every live socket of one user (joined by `sensors.consumers.ReadersConsumer`)."""
    return f"accounts.user.{user_id}"


def user_rights_changed(*, user_ids: Iterable[int]) -> None:
    """After the current transaction commits (the sockets must see the change), tell the users' sockets to check
    their rights again. Only groups someone watches are sent to."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    message: RecheckMessage = {"type": RECHECK_EVENT}
    # robust: with Redis away the change itself stands (logged); the sockets' periodic check then finds it.
    transaction.on_commit(lambda: group_messages_send([(user_group(user_id), message) for user_id in ids]), robust=True)
