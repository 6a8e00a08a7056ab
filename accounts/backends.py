"""The authentication backend of every password check and every session: allauth's email log-in, plus

- the per-account lock (`accounts.services.login_failure_record`): a locked account is refused before its password
  is checked, whatever the path (log-in page, admin, API token, re-authentication), and each wrong password counts;
- staff's permissions in the admin (`accounts.roles.STAFF_APPS`): the API's rule that staff may do everything
  with the apps' data, without making them superusers;
- the one rule of who may authenticate (`accounts.selectors.user_can_authenticate`), which Django also applies to
  each request of a session (`get_user`), so that an account deactivated or awaiting confirmation is logged out.

The paths only phrase the refusal (`AccountLocked`: 429 in the API, the form's message on the pages).
"""

from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend
from django.core.exceptions import PermissionDenied

from accounts.roles import STAFF_APPS, STAFF_PERMISSIONS
from accounts.selectors import login_lock_remaining, user_can_authenticate, user_for_session
from accounts.services import login_failure_record, login_failures_clear


class AccountBackend(AuthenticationBackend):
    _password_matched = False

    def authenticate(self, request, **credentials: Any):
        login = credentials.get("email") or credentials.get("username")
        if not login or not credentials.get("password"):
            return None
        if login_lock_remaining(email=login):
            # PermissionDenied makes Django stop at this backend and answer None (no other backend may let it in).
            raise PermissionDenied("account locked")
        self._password_matched = False
        user = super().authenticate(request, **credentials)
        if self._password_matched:
            login_failures_clear(email=login)
        else:
            login_failure_record(email=login)
        return user

    def _check_password(self, user, password: str):
        # allauth's check, noting whether the password itself was right (a right password of an account that may
        # not authenticate is no failure: allauth then shows the account its confirmation or approval page).
        if not user:
            return None
        self._did_check_password = True
        if not user.check_password(password):
            return None
        self._password_matched = True
        if not self.user_can_authenticate(user):
            self._stash_user(user)
            return None
        return user

    def user_can_authenticate(self, user) -> bool:
        return user_can_authenticate(user)

    def get_user(self, user_id):
        # Django's, with the confirmation state fetched in the same query (this runs on every request of a session).
        user = user_for_session(pk=user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def get_all_permissions(self, user_obj, obj=None):
        permissions = super().get_all_permissions(user_obj, obj)
        if obj is not None or not user_obj.is_active or not user_obj.is_staff:
            return permissions
        if not hasattr(user_obj, "_staff_perm_cache"):
            from django.contrib.auth.models import Permission

            rows = Permission.objects.filter(content_type__app_label__in=STAFF_APPS).values_list(
                "content_type__app_label", "codename"
            )
            user_obj._staff_perm_cache = {f"{app}.{codename}" for app, codename in rows} | STAFF_PERMISSIONS
        return permissions | user_obj._staff_perm_cache
