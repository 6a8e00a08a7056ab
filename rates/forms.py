from django import forms


class RateChartForm(forms.Form):
    base = forms.RegexField(regex=r"^[A-Za-z]{3}$", max_length=3)
    quote = forms.RegexField(regex=r"^[A-Za-z]{3}$", max_length=3)
    days = forms.IntegerField(min_value=1, max_value=3660)

    def clean_base(self) -> str:
        return self.cleaned_data["base"].upper()

    def clean_quote(self) -> str:
        return self.cleaned_data["quote"].upper()
