"""Every change to users, roles and API tokens goes through these functions.

The sign-up pages (allauth adapter), the admin, the API, the management commands and the tasks all call them,
so the rules hold whichever way a change arrives.
"""

from __future__ import annotations

import enum
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Final, Literal

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings

from accounts.broadcast import user_rights_changed
from accounts.models import User
from accounts.roles import ROLE_NAMES, Role
from accounts.selectors import login_lock_keys, login_lock_remaining, user_can_authenticate
from common.exceptions import ApplicationError

if TYPE_CHECKING:
    from django.http import HttpRequest


class _Unset(enum.Enum):
    """The type of `_UNSET`: an argument left out, where None means something."""

    UNSET = enum.auto()


_UNSET: Final = _Unset.UNSET


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    is_active: bool = True,
    is_staff: bool = False,
    is_superuser: bool = False,
    role: str | None = None,
    validate: bool = False,
) -> User:
    """Create a user; the email is normalised and must be new (without regard to case).

    With `validate=True` the password must pass the configured validators. Without a password the account has
    an unusable one (it can set one through password reset).
    """
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email,
                password=password,
                validate=validate,
                first_name=first_name,
                last_name=last_name,
                is_active=is_active,
                is_staff=is_staff,
                is_superuser=is_superuser,
            )
    except ValidationError as exc:
        fields = exc.message_dict
        detail = "The password is too weak." if "password" in fields else "An email address is required."
        raise ApplicationError(detail, fields=fields) from exc
    except IntegrityError as exc:
        raise ApplicationError(
            "A user with this email address already exists.",
            code="duplicate",
            fields={"email": ["A user with this email address already exists."]},
        ) from exc
    if role:
        user_set_role(user=user, role=role)
    return user


@transaction.atomic
def user_email_confirm(*, user: User) -> None:
    """Record the user's address as confirmed and primary (allauth's EmailAddress), for accounts made by an operator
    of the site rather than through sign-up (the demo admin of `make run`): without it, the log-in page would ask
    to confirm an address that may not even receive mail."""
    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})


def user_register(*, user: User) -> User:
    """Finish a self-service sign-up (the allauth form filled `user` but did not save it).

    New accounts get the configured default role; when staff approval is required they stay inactive (unable to
    log in or use tokens) until `user_approve`.
    """
    user.email = User.objects.normalize_email(user.email)
    user.is_active = not settings.ACCOUNTS_REQUIRE_APPROVAL
    user.is_staff = False
    user.is_superuser = False
    user.save()
    if settings.ACCOUNTS_DEFAULT_ROLE:
        user_set_role(user=user, role=settings.ACCOUNTS_DEFAULT_ROLE)
    return user


def user_approve(*, user: User) -> User:
    """Let an account that awaited staff approval log in."""
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    return user


@transaction.atomic
def user_set_role(*, user: User, role: str | None) -> User:
    """Give the user exactly one role (`viewer` or `operator`), or none with `role=None`/"none"."""
    if role in (None, "", "none"):
        role = None
    elif role not in ROLE_NAMES:
        raise ApplicationError(
            f"Unknown role {role!r}.", fields={"role": [f"Choose one of: {', '.join([*Role.values, 'none'])}."]}
        )
    user.groups.remove(*Group.objects.filter(name__in=ROLE_NAMES))
    if role:
        try:
            group = Group.objects.get(name=role)
        except Group.DoesNotExist as exc:
            raise ApplicationError(
                f"The role group {role!r} is missing; run `manage.py migrate` (migration accounts 0002 makes it).",
                code="configuration_error",
                status_code=500,
            ) from exc
        user.groups.add(group)
    # Django caches permissions on the instance; drop them so the new role takes effect at once.
    for attribute in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(attribute, None)
    user_rights_changed(user_ids=[user.pk])  # open sockets check again, and close if reading is no longer allowed
    return user


def user_rights_recheck(*, user: User) -> None:
    """Staff changed the account outside these services (the admin's user form: active, staff, groups): its open
    sockets check their rights again once the change is committed."""
    user_rights_changed(user_ids=[user.pk])


def user_delete(*, user: User) -> None:
    """Delete the account and everything it owns (API tokens, email addresses, sessions and sockets end with it)."""
    user_rights_changed(user_ids=[user.pk])
    user.delete()


def api_token_create(*, user: User, ttl: timedelta | None | Literal[_Unset.UNSET] = _UNSET) -> tuple[AuthToken, str]:
    """Create an API token; returns the row and the raw token, which is shown once and never stored.

    `ttl` defaults to settings REST_KNOX["TOKEN_TTL"]; `None` makes a token that never expires.
    """
    if not user_can_authenticate(user):
        raise ApplicationError(
            "Inactive, unapproved or unconfirmed accounts cannot have API tokens.", code="inactive_user"
        )
    expiry: timedelta | None = knox_settings.TOKEN_TTL if ttl is _UNSET else ttl
    if expiry is not None and expiry <= timedelta(0):
        raise ApplicationError("A token's lifetime must be positive.", fields={"ttl": ["Must be positive."]})
    created: tuple[AuthToken, str] = AuthToken.objects.create(user=user, expiry=expiry)
    return created


def api_token_revoke(*, token: AuthToken) -> None:
    """Revoke a token: it stops working at once, on the API and on the sockets it opened."""
    user_id = token.user_id
    token.delete()
    user_rights_changed(user_ids=[user_id])


def api_tokens_purge_expired() -> int:
    """Delete tokens past their expiry (they already fail authentication); returns how many."""
    deleted: int
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted


class AccountLocked(ApplicationError):
    """Too many wrong passwords for one account: every path that checks a password refuses it for `retry_after`
    seconds, the right password included."""

    MESSAGE = "Too many failed login attempts for this account. Try again in {minutes} minute(s)."

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            self.MESSAGE.format(minutes=max(1, -(-retry_after // 60))), code="account_locked", status_code=429
        )
        self.retry_after = retry_after


def login_lock_check(*, email: str) -> None:
    """Raise `AccountLocked` while the account with this email is locked."""
    remaining = login_lock_remaining(email=email)
    if remaining:
        raise AccountLocked(remaining)


def login_failure_record(*, email: str) -> None:
    """Count a wrong password for the account with this email (without regard to case, from whatever address).

    Guarantees: the ACCOUNTS_LOGIN_LOCK_FAILURES-th failure within ACCOUNTS_LOGIN_LOCK_SECONDS of the first locks
    the account for ACCOUNTS_LOGIN_LOCK_SECONDS. Unknown emails count and lock the same way, so that the answers
    tell nothing about which accounts exist. The counters live in the cache (shared by every process with Redis).
    """
    failures_key, lock_key = login_lock_keys(email)
    seconds = int(settings.ACCOUNTS_LOGIN_LOCK_SECONDS)
    cache.add(failures_key, 0, timeout=seconds)
    try:
        failures = cache.incr(failures_key)
    except ValueError:  # the count expired between add and incr: this failure starts a new one
        cache.set(failures_key, 1, timeout=seconds)
        failures = 1
    if failures >= settings.ACCOUNTS_LOGIN_LOCK_FAILURES:
        cache.set(lock_key, time.time() + seconds, timeout=seconds)
        cache.delete(failures_key)


def login_failures_clear(*, email: str) -> None:
    """A right password: the failures counted so far are forgotten (a lock in force stays)."""
    cache.delete(login_lock_keys(email)[0])


def password_confirm(*, user: User, password: str, request: HttpRequest | None = None) -> bool:
    """Whether `password` is the password of the logged-in `user` (re-authentication before deleting the account
    or changing the password). It goes through the authentication backend, so wrong passwords count towards the
    account's lock and a locked account raises `AccountLocked`."""
    from django.contrib.auth import authenticate

    login_lock_check(email=user.email)
    authenticated = authenticate(request, username=user.email, password=password)
    if authenticated is None:
        login_lock_check(email=user.email)
        return False
    return bool(authenticated.pk == user.pk)


def api_token_obtain(*, email: str, password: str, request: HttpRequest | None = None) -> tuple[AuthToken, str]:
    """Exchange an email and password for a new API token (the log-in of scripts).

    Raises `AccountLocked` (429) while the account is locked, else `invalid_credentials` (401) for an unknown
    email or a wrong password, and `account_unusable` (403) for a right password of an account that may not
    authenticate (inactive, awaiting approval or email confirmation)."""
    from allauth.account.auth_backends import AuthenticationBackend
    from django.contrib.auth import authenticate

    email = User.objects.normalize_email(email)
    login_lock_check(email=email)
    AuthenticationBackend.unstash_authenticated_user()
    user = authenticate(request, username=email, password=password)
    # The backend keeps aside an account whose password was right but which may not authenticate.
    refused = AuthenticationBackend.unstash_authenticated_user()
    if user is None and refused is not None:
        raise ApplicationError(
            "This account may not log in yet: confirm its email address, or wait for staff to approve it.",
            code="account_unusable",
            status_code=403,
        )
    if user is None:
        raise ApplicationError("Unable to log in with these credentials.", code="invalid_credentials", status_code=401)
    return api_token_create(user=user)
