"""django-allauth hooks: sign-ups go through accounts.services, approval-pending accounts are told so, and a locked
account (accounts.backends) is told why its password is refused."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.flows.email_verification import send_verification_email_for_user
from django import forms
from django.conf import settings
from django.shortcuts import redirect

from accounts.services import AccountLocked, login_lock_check, user_register


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=False)
        return user_register(user=user)

    def pre_login(self, request, user, **kwargs):
        if not user.is_active and settings.ACCOUNTS_REQUIRE_APPROVAL and kwargs.get("signup"):
            # allauth stops at inactive accounts before sending the confirmation mail; confirm the address
            # while staff review the account.
            send_verification_email_for_user(request, user)
            return redirect("accounts:awaiting-approval")
        return super().pre_login(request, user, **kwargs)

    def authenticate(self, request, **credentials):
        # The backend refuses a locked account; this only words the refusal on the page.
        login = credentials.get("email") or credentials.get("username") or ""
        try:
            login_lock_check(email=login)
            user = super().authenticate(request, **credentials)
            if user is None:
                login_lock_check(email=login)
        except AccountLocked as exc:
            raise forms.ValidationError(exc.detail, code=exc.code) from exc
        return user
