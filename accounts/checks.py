from django.conf import settings
from django.core.checks import Error, register

from accounts.roles import ROLE_NAMES


@register()
def default_role_check(app_configs, **kwargs) -> list[Error]:
    """ACCOUNTS_DEFAULT_ROLE must name a role, or be empty, before anyone signs up."""
    role = settings.ACCOUNTS_DEFAULT_ROLE
    if role and role not in ROLE_NAMES:
        return [
            Error(
                f"ACCOUNTS_DEFAULT_ROLE={role!r} is not a role.",
                hint=f"Use one of {', '.join(sorted(ROLE_NAMES))}, or leave it empty for no role.",
                id="accounts.E001",
            )
        ]
    return []
