"""django-allauth hooks: sign-ups go through accounts.services, and approval-pending accounts are told so."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.flows.email_verification import send_verification_email_for_user
from django.conf import settings
from django.shortcuts import redirect

from accounts.services import user_register


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
