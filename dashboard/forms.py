"""The dashboard pages' forms: GET filter forms using the API's filter vocabulary (`sensors.filters`,
`detection.filters`), so that a page's query string is also a valid API query where both exist; and the forms that
read and type an operator's input (the rules stay in the services they hand it to)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings

from common.inputs import InstantFormField
from common.models import Job
from dashboard.selectors import DEFAULT_RANGE, EVENT_SOURCES, RANGES, STATES
from detection.models import Anomaly, Baseline, DetectorSettings, Method, SensorEvent, SystemEvent
from sensors.models import Platform, Sensor, SensorKind
from sensors.selectors import sensor_list


class OverviewFilterForm(forms.Form):
    platform = forms.ChoiceField(required=False, label="Platform")
    kind = forms.ChoiceField(required=False, label="Kind", choices=[("", "all kinds"), *SensorKind.choices])
    state = forms.ChoiceField(required=False, label="State", choices=[("", "all states")] + [(s, s) for s in STATES])

    def __init__(self, *args, platforms: list[Platform], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        platform = cast("forms.ChoiceField", self.fields["platform"])
        platform.choices = [("", "all platforms")] + [(p.slug, p.name) for p in platforms]


EVENT_KINDS = [*SensorEvent.Kind.choices, *SystemEvent.Kind.choices]


class EventFilterForm(forms.Form):
    source = forms.ChoiceField(
        required=False, label="Source", choices=[("", "all events")] + [(s, f"{s} events") for s in EVENT_SOURCES]
    )
    kind = forms.ChoiceField(required=False, label="Kind", choices=[("", "all kinds"), *EVENT_KINDS])
    sensor = forms.CharField(required=False, label="Sensor key", max_length=100)


class ChartRangeForm(forms.Form):
    """`?range=` (1h … 90d) and `?at=` (an ISO time the range is centred on) of a sensor page."""

    range = forms.ChoiceField(choices=[(name, name) for name in RANGES], required=False)
    at = InstantFormField(required=False, help_text="ISO 8601; naive = UTC.")

    def clean_range(self) -> str:
        return self.cleaned_data.get("range") or DEFAULT_RANGE


class DetectorSettingsForm(forms.Form):
    """A sensor's editable detector settings, shown with their current values; only the changed ones are sent to
    `detector_settings_update`, which checks the rules (levels in order, a window the baseline can hold, …)."""

    method = forms.ChoiceField(choices=Method.choices)
    window = forms.IntegerField(min_value=4, help_text="m: points per subsequence.")
    warning_level = forms.FloatField(help_text="% of the baseline's max distance from which it warns.")
    critical_level = forms.FloatField(help_text="% from which it is critical.")
    ok_run = forms.IntegerField(min_value=1, help_text="Consecutive ok readings that close an anomaly.")
    cooldown_seconds = forms.IntegerField(min_value=0, help_text="A new alarm this soon after one joins it.")
    silence_seconds = forms.IntegerField(min_value=1, help_text="No reading for this long: not available.")
    baseline = forms.ModelChoiceField(
        queryset=Baseline.objects.none(), required=False, empty_label="The default seed", help_text="Seeds or its own."
    )

    def __init__(self, *args: Any, sensor: Sensor, config: DetectorSettings, **kwargs: Any) -> None:
        initial = {name: getattr(config, name) for name in self.base_fields if name != "baseline"}
        initial["baseline"] = config.baseline_id
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        # Seeds and the sensor's own baselines (the rule `detector_settings_update` keeps), without their values.
        cast(forms.ModelChoiceField, self.fields["baseline"]).queryset = (
            (Baseline.objects.filter(kind=Baseline.Kind.SEED) | Baseline.objects.filter(sensor=sensor))
            .defer("values")
            .order_by("kind", "name")
        )


class FeedbackForm(forms.Form):
    """Feedback mode on (with how many recent readings to mark normal; empty: 2m) or off."""

    enabled = forms.TypedChoiceField(choices=[("true", "on"), ("false", "off")], coerce=lambda text: text == "true")
    points = forms.IntegerField(required=False, min_value=1, help_text="Recent readings marked normal (default 2m).")


STATUS_CHOICES = [("", "Any status"), ("open,acknowledged", "Needing attention"), *Anomaly.State.choices]


class AnomalyFilterForm(forms.Form):
    """The anomalies page's filters, for display; the filtering itself is `detection.filters.AnomalyFilter`
    (through `anomaly_list`), which reads the same names."""

    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    sensor = forms.CharField(required=False, max_length=100, help_text="Sensor key.")
    platform = forms.ChoiceField(required=False)
    since = forms.CharField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="UTC."
    )
    until = forms.CharField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="UTC."
    )

    def __init__(self, *args: Any, platforms: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["platform"]).choices = [("", "Any platform"), *platforms]


class AnomalyResolveForm(forms.Form):
    cause = forms.ChoiceField(
        choices=[(Anomaly.State.RESOLVED, "Resolved"), (Anomaly.State.EXTERNAL_CAUSE, "External cause")]
    )
    note = forms.CharField(required=False, max_length=2000)


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


class JobFilterForm(forms.Form):
    """The jobs page's filters: a state and a kind (the task's name)."""

    state = forms.ChoiceField(choices=[("", "Any state"), *Job.State.choices], required=False)
    kind = forms.CharField(required=False, max_length=64)


class ExportForm(forms.Form):
    """The data page's export: a format, and optionally a start time and a platform."""

    format = forms.ChoiceField(
        choices=[("jsonl", "JSON lines (one document per sensor)"), ("csv", "Zip of CSV files (one per table)")]
    )
    since = forms.DateTimeField(
        required=False,
        help_text="Only readings, detections, anomalies and events from then on (empty: all).",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    platform = forms.ModelChoiceField(
        queryset=Platform.objects.order_by("slug"), to_field_name="slug", required=False, empty_label="All platforms"
    )


class ImportForm(forms.Form):
    """The data page's import: an archive file, and whether to merge it into a database that holds data."""

    file = forms.FileField(help_text="An archive made by an export (.jsonl or .zip).")
    merge = forms.BooleanField(
        required=False, help_text="Into a database that holds data: keep existing rows, skip duplicates."
    )
