"""Every change to users, roles and API tokens goes through these functions.

The sign-up pages (allauth adapter), the admin, the API, the management commands and the tasks all call them,
so the rules hold whichever way a change arrives.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Final, Literal

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings

from accounts.models import DeviceKey, User
from accounts.roles import ROLE_NAMES, Role
from common.exceptions import ApplicationError

if TYPE_CHECKING:
    from django.http import HttpRequest

    from sensors.models import Platform, Sensor


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
    email = User.objects.normalize_email(email)
    if not email:
        raise ApplicationError("An email address is required.", fields={"email": ["This field is required."]})
    user = User(
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_active=is_active,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    if password is None:
        user.set_unusable_password()
    else:
        if validate:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise ApplicationError("The password is too weak.", fields={"password": exc.messages}) from exc
        user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
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
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
    return user


def user_delete(*, user: User) -> None:
    """Delete the account and everything it owns (API tokens, email addresses, sessions end with it)."""
    user.delete()


def api_token_create(*, user: User, ttl: timedelta | None | Literal[_Unset.UNSET] = _UNSET) -> tuple[AuthToken, str]:
    """Create an API token; returns the row and the raw token, which is shown once and never stored.

    `ttl` defaults to settings REST_KNOX["TOKEN_TTL"]; `None` makes a token that never expires.
    """
    if not user.is_active:
        raise ApplicationError("Inactive users cannot have API tokens.", code="inactive_user")
    expiry: timedelta | None = knox_settings.TOKEN_TTL if ttl is _UNSET else ttl
    if expiry is not None and expiry <= timedelta(0):
        raise ApplicationError("A token's lifetime must be positive.", fields={"ttl": ["Must be positive."]})
    created: tuple[AuthToken, str] = AuthToken.objects.create(user=user, expiry=expiry)
    return created


def api_token_revoke(*, token: AuthToken) -> None:
    """Revoke a token: it stops working at once."""
    token.delete()


def api_tokens_purge_expired() -> int:
    """Delete tokens past their expiry (they already fail authentication); returns how many."""
    deleted: int
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted


def api_token_obtain(*, email: str, password: str, request: HttpRequest | None = None) -> tuple[AuthToken, str]:
    """Exchange an email and password for a new API token (the log-in of scripts)."""
    from django.contrib.auth import authenticate

    user = authenticate(request, username=User.objects.normalize_email(email), password=password)
    if user is None:
        # Same answer for unknown email, wrong password and inactive account: no account enumeration.
        raise ApplicationError("Unable to log in with these credentials.", code="invalid_credentials", status_code=401)
    return api_token_create(user=user)


# --- device keys ------------------------------------------------------------------------------------------------

DEVICE_KEY_PREFIX = "dk_"


def device_key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@transaction.atomic
def device_key_create(
    *, name: str, platform: Platform | None = None, sensor: Sensor | None = None, created_by: User | None = None
) -> tuple[DeviceKey, str]:
    """Create a key bound to one platform or one sensor; returns the row and the raw key (shown once)."""
    if (platform is None) == (sensor is None):
        raise ApplicationError(
            "A device key is bound to exactly one platform or one sensor.",
            fields={
                "platform": ["Give a platform or a sensor, not both."],
                "sensor": ["Give a platform or a sensor, not both."],
            },
        )
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A device key needs a name.", fields={"name": ["This field is required."]})
    raw = DEVICE_KEY_PREFIX + secrets.token_urlsafe(32)
    key = DeviceKey.objects.create(
        name=name,
        prefix=raw[len(DEVICE_KEY_PREFIX) : len(DEVICE_KEY_PREFIX) + DeviceKey.PREFIX_LENGTH],
        digest=device_key_digest(raw),
        platform=platform,
        sensor=sensor,
        created_by=created_by,
    )
    return key, raw


def device_key_revoke(*, key: DeviceKey) -> DeviceKey:
    """Revoke a key: it stops working at once; the row stays for the record."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def device_key_authenticate(*, raw: str) -> DeviceKey | None:
    """The active key with this secret, or None. Marks it used (at most once a minute, to spare writes)."""
    if not raw.startswith(DEVICE_KEY_PREFIX):
        return None
    key = DeviceKey.objects.filter(digest=device_key_digest(raw), revoked_at__isnull=True).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        DeviceKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
