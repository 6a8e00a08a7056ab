from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users (email login), roles, API tokens, device keys."""

    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import checks, schema  # noqa: F401  (register the system checks and OpenAPI extensions)
