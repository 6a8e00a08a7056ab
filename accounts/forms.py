from allauth.account.forms import ChangePasswordForm
from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from accounts.services import AccountLocked, login_lock_check, password_confirm


class AccountDeleteForm(forms.Form):
    """Deleting an account asks for the password again, and for an explicit confirmation."""

    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    confirm = forms.BooleanField(label="I understand that my account and its API tokens are deleted for good.")

    def __init__(self, *args, user, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.request = request

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        try:
            confirmed = password_confirm(user=self.user, password=password, request=self.request)
        except AccountLocked as exc:
            raise forms.ValidationError(exc.detail, code=exc.code) from exc
        if not confirmed:
            raise forms.ValidationError("The password is not correct.")
        return password


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's log-in: the backend refuses a locked account; this words the refusal."""

    def clean(self):
        email = self.cleaned_data.get("username") or ""
        try:
            login_lock_check(email=email)
        except AccountLocked as exc:
            raise forms.ValidationError(exc.detail, code=exc.code) from exc
        return super().clean()


class PasswordChangeForm(ChangePasswordForm):
    """allauth's password change, with the current password checked through the backend: wrong ones count towards
    the account's lock, and a locked account cannot change its password (a stolen session cannot guess it)."""

    def clean_oldpassword(self) -> str:
        password = self.cleaned_data.get("oldpassword", "")
        try:
            confirmed = password_confirm(user=self.user, password=password)
        except AccountLocked as exc:
            raise forms.ValidationError(exc.detail, code=exc.code) from exc
        if not confirmed:
            raise forms.ValidationError("Please type your current password.", code="enter_current_password")
        return password
