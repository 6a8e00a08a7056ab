from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users (email login), roles, API tokens."""

    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import (
            checks,  # noqa: F401  (register the system checks)
            schema,  # noqa: F401  (register the OpenAPI extension of API tokens)
        )
