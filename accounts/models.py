from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from knox.models import AuthToken


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        """Emails are compared without regard to case, so they are stored lower-cased and trimmed."""
        return (email or "").strip().lower()

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(email__iexact=self.normalize_email(username))

    def create_user(self, email: str, password: str | None = None, *, validate: bool = False, **extra_fields) -> "User":
        """Create and save a user: the email normalised and required, the password hashed (an unusable one when
        None). With `validate=True` the password must pass the configured validators first.

        Problems with the input raise Django's `ValidationError` by field (`email`, `password`); an email that is
        already taken (without regard to case) fails on the database constraint (`IntegrityError`).
        Sensorhub code calls `accounts.services.user_create`, which adds roles and our error type on top.
        """
        email = self.normalize_email(email)
        if not email:
            raise ValidationError({"email": ["This field is required."]})
        user = self.model(email=email, **extra_fields)
        if password is None:
            user.set_unusable_password()
        else:
            if validate:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise ValidationError({"password": exc.messages}) from exc
            user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra_fields) -> "User":
        extra_fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra_fields)


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


class ApiToken(AuthToken):
    """An API token as staff see it in the admin ("API tokens", the README's name): django-rest-knox's token, stored
    only as a SHA-512 digest. A proxy: same table and rows, a name and a place in the admin's Accounts section."""

    class Meta:
        proxy = True
        verbose_name = "API token"
        verbose_name_plural = "API tokens"
