from django import forms


class AccountDeleteForm(forms.Form):
    """Deleting an account asks for the password again, and for an explicit confirmation."""

    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    confirm = forms.BooleanField(label="I understand that my account and its API tokens are deleted for good.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("The password is not correct.")
        return password
