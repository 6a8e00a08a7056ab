"""One filter vocabulary for the sensors API and pages (django-filter)."""

import django_filters

from sensors.models import Installation, Sensor, SensorKind


class InstallationFilter(django_filters.FilterSet):
    platform = django_filters.CharFilter(field_name="platform__slug", help_text="Platform slug.")

    class Meta:
        model = Installation
        fields = ["platform"]


class SensorFilter(django_filters.FilterSet):
    platform = django_filters.CharFilter(field_name="platform__slug", help_text="Platform slug.")
    kind = django_filters.ChoiceFilter(choices=SensorKind.choices)
    active = django_filters.BooleanFilter()
    installation = django_filters.NumberFilter(field_name="installation_id", help_text="Installation id.")

    class Meta:
        model = Sensor
        fields = ["platform", "kind", "active", "installation"]
