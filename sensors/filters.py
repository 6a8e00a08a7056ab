"""One filter vocabulary for the sensors API and pages (django-filter)."""

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

from common.inputs import BooleanFilter
from sensors.models import Installation, Sensor, SensorKind


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number within the database's bigint range (anything else answers 400, never reaches SQL)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)
        # The schema says the same (drf-spectacular would call a number filter a `number`, without bounds).
        schema = {"type": "integer", "minimum": self.extra["min_value"], "maximum": self.extra["max_value"]}
        extend_schema_field({**schema, "description": self.extra.get("help_text", "")})(self)


class InstallationFilter(django_filters.FilterSet):
    platform = django_filters.CharFilter(field_name="platform__slug", help_text="Platform slug.")

    class Meta:
        model = Installation
        fields = ["platform"]


class SensorFilter(django_filters.FilterSet):
    platform = django_filters.CharFilter(field_name="platform__slug", help_text="Platform slug.")
    kind = django_filters.ChoiceFilter(choices=SensorKind.choices)
    active = BooleanFilter()
    installation = IdFilter(field_name="installation_id", help_text="Installation id.")

    class Meta:
        model = Sensor
        fields = ["platform", "kind", "active", "installation"]
