from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from accounts.models import User


def user_list() -> QuerySet[User]:
    """Users with their groups prefetched (role shown without a query per user)."""
    return User.objects.prefetch_related(Prefetch("groups", queryset=Group.objects.only("id", "name"))).order_by(
        "email"
    )


def _email_unconfirmed() -> Exists:
    from allauth.account.models import EmailAddress

    return Exists(EmailAddress.objects.filter(user=OuterRef("pk"), email__iexact=OuterRef("email"), verified=False))


def user_for_session(*, pk: int | str) -> User | None:
    """The user of a session with what `user_can_authenticate` needs, in one query (it runs on every request)."""
    return User.objects.annotate(email_unconfirmed=_email_unconfirmed()).filter(pk=pk).first()


def user_can_authenticate(user: User) -> bool:
    """The one rule of who may be authenticated, by any means (password, session, API token, WebSocket): an active
    account (staff approved it, when approval is required) whose address is not awaiting confirmation.

    An address awaits confirmation when allauth recorded it at sign-up and it was never confirmed. Accounts made
    by staff or by a command have no such record: staff vouched for them.
    """
    if not user.is_active:
        return False
    if settings.ACCOUNT_EMAIL_VERIFICATION != "mandatory":
        return True
    unconfirmed = getattr(user, "email_unconfirmed", None)  # annotated by `user_for_session`
    if unconfirmed is None:
        unconfirmed = User.objects.filter(pk=user.pk).filter(_email_unconfirmed()).exists()
    return not unconfirmed


def login_lock_keys(email: str) -> tuple[str, str]:
    """The cache keys of an account's failure count and lock (its normalised email, hashed: any text is a key)."""
    digest = hashlib.sha256(User.objects.normalize_email(email).encode("utf-8")).hexdigest()[:32]
    return f"accounts:login-failures:{digest}", f"accounts:login-lock:{digest}"


def login_lock_remaining(*, email: str) -> int:
    """Seconds until the account with this email may try a password again; 0 when it is not locked."""
    until = cache.get(login_lock_keys(email)[1])
    if until is None:
        return 0
    return max(0, math.ceil(float(until) - time.time()))
