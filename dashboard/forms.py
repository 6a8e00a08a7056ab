"""Forms of the dashboard's pages."""

from __future__ import annotations

from typing import cast

from django import forms
from django.conf import settings

from sensors.selectors import sensor_list

DELIMITERS = [(",", "comma ,"), (";", "semicolon ;"), ("\t", "tab")]


class CsvUploadForm(forms.Form):
    """A CSV file of readings (columns timestamp,value[,sensor]) and, for files without a sensor column, its sensor.
    The size limit is checked here so that the page answers with the form; the service checks it again."""

    file = forms.FileField(
        label="CSV file",
        help_text="Columns timestamp,value[,sensor]; UTF-8; a header row naming the columns is optional.",
    )
    sensor = forms.ChoiceField(
        required=False,
        label="Sensor",
        help_text="The sensor of every row, for files without a sensor column.",
    )
    delimiter = forms.ChoiceField(choices=DELIMITERS, initial=",", label="Column separator")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        keys = sensor_list().filter(active=True).values_list("key", flat=True)
        sensor = cast(forms.ChoiceField, self.fields["sensor"])
        sensor.choices = [("", "— the file's sensor column —"), *((key, key) for key in keys)]
        self.fields["file"].widget.attrs.update(
            {"accept": ".csv,text/csv,text/plain", "data-max-bytes": settings.CSV_UPLOAD_MAX_BYTES}
        )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.CSV_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; the limit is {limit:,} bytes (CSV_UPLOAD_MAX_BYTES)."
            )
        if upload.size == 0:
            raise forms.ValidationError("The file is empty.")
        return upload
