"""Every change to device keys goes through these functions: the admin and the `create_device_key` command create
and revoke keys, the REST API and the WebSocket middleware authenticate them."""

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from common.exceptions import ApplicationError
from sensors.models import DeviceKey, Platform, Sensor

DEVICE_KEY_PREFIX = "dk_"


def device_key_digest(raw: str) -> str:
    """The SHA-256 hex digest stored for a raw key (the key itself is never stored)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@transaction.atomic
def device_key_create(
    *,
    name: str,
    platform: Platform | None = None,
    sensor: Sensor | None = None,
    created_by: User | None = None,
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
