from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users (email login), roles, API tokens."""

    name = "accounts"
    verbose_name = "Accounts"
