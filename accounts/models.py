from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        """Emails are compared without regard to case, so they are stored lower-cased and trimmed."""
        return (email or "").strip().lower()

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(email__iexact=self.normalize_email(username))

    def create_user(self, email: str, password: str | None = None, **extra_fields) -> "User":
        # Kept for Django's own tools (createsuperuser, tests); Sensorhub code calls accounts.services.
        from accounts.services import user_create

        return user_create(email=email, password=password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields) -> "User":
        from accounts.services import user_create

        extra_fields.update(is_staff=True, is_superuser=True)
        return user_create(email=email, password=password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with an email address.

    Guarantees: the email is unique without regard to case (a database constraint on lower(email)); the password
    is only ever stored hashed by Django's hashers; names are optional.
    """

    email = models.EmailField("email address", max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the admin site.")
    is_active = models.BooleanField(
        default=True,
        help_text="Inactive users cannot log in or use API tokens (new accounts awaiting approval are inactive).",
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]
        permissions = [
            ("access_data", "Can read the dashboard and the API (role viewer)"),
            ("operate", "Can edit sensors, acknowledge anomalies, run imports and rate updates (role operator)"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email)

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self) -> str:
        return self.first_name or self.email


class DeviceKey(models.Model):
    """A secret a device sends (`Authorization: Device <key>`) to write readings of one platform or one sensor.

    Only the SHA-256 digest of the key is stored; the key itself is shown once, when created. A revoked key
    stops working at once and stays listed for the record.
    """

    PREFIX_LENGTH = 8

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=PREFIX_LENGTH, editable=False, help_text="The key's first characters.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    platform = models.ForeignKey(
        "sensors.Platform", on_delete=models.CASCADE, null=True, blank=True, related_name="device_keys"
    )
    sensor = models.ForeignKey(
        "sensors.Sensor", on_delete=models.CASCADE, null=True, blank=True, related_name="device_keys"
    )
    created_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(platform__isnull=False, sensor__isnull=True)
                | models.Q(platform__isnull=True, sensor__isnull=False),
                name="accounts_devicekey_one_target",
                violation_error_message="A device key is bound to exactly one platform or one sensor.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def target(self) -> str:
        return f"sensor {self.sensor}" if self.sensor_id else f"platform {self.platform}"

    def may_write(self, *, sensor_id: int, platform_id: int | None) -> bool:
        if self.sensor_id is not None:
            return self.sensor_id == sensor_id
        return platform_id is not None and self.platform_id == platform_id
