"""Roles are Django groups (made by migration 0002) carrying the permissions below.

Staff and superusers may do everything a role allows. Checks go through `can_read` and `can_operate` so that
the API, pages, WebSockets and admin agree. In the admin, staff hold every permission of the apps' data
(`STAFF_APPS`) and may see and change users (their roles and whether they are active), as the API lets them
(`accounts.backends.AccountBackend.get_all_permissions`); what the API gives only to superusers (groups and their
permissions, other users' tokens, new users, staff and superuser flags) stays theirs.
"""

from django.contrib.auth.models import AnonymousUser
from django.db import models

READ_PERMISSION = "accounts.access_data"
OPERATE_PERMISSION = "accounts.operate"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"


ROLE_NAMES = frozenset(Role.values)


def _allowed(user, permission: str) -> bool:
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff or user.has_perm(permission))


def can_read(user) -> bool:
    """Viewers, operators, staff."""
    return _allowed(user, READ_PERMISSION)


def can_operate(user) -> bool:
    """Operators and staff."""
    return _allowed(user, OPERATE_PERMISSION)


def user_role(user) -> str | None:
    """The user's role name ("operator" wins over "viewer"), or None."""
    names = {group.name for group in user.groups.all()} & ROLE_NAMES
    if Role.OPERATOR in names:
        return Role.OPERATOR.value
    if Role.VIEWER in names:
        return Role.VIEWER.value
    return None


# The apps whose every model staff may view, add, change and delete in the admin (the API lets staff do everything
# with sensors, detection and rates; the schedules, jobs and job results are run by staff).
STAFF_APPS = ("common", "sensors", "detection", "rates", "django_celery_beat", "django_celery_results")
# Staff see users and change their role and active flag (the API's user list and role endpoint).
STAFF_PERMISSIONS = frozenset({"accounts.view_user", "accounts.change_user"})
