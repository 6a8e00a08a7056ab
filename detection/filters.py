"""One filter vocabulary for the detection API and pages (django-filter), applied by the selectors.

Times are read by the one time parser (`common.inputs.InstantFilter`: ISO 8601, naive = UTC, bounded); `since` is
inclusive and `until` exclusive everywhere, as `start`/`end` of the readings API. A list of statuses or kinds is one
comma-separated value (`status=warning,critical`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import django_filters
from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema_field

from common.exceptions import ApplicationError
from common.inputs import BooleanFilter, InstantFilter
from detection.models import Anomaly, Baseline, Detection, SensorEvent, Status, SystemEvent


class ChoiceInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """A comma-separated list of choices, each one checked."""


class LevelFilter(django_filters.NumberFilter):
    """A level in %: a number up to django-filter's bound for numbers (10**50), which the schema states too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = {"type": "number", "maximum": 1e50, "description": str(self.extra.get("help_text", ""))}
        extend_schema_field(schema)(self)


_M = TypeVar("_M", bound=Model)


def filtered(
    filterset_class: type[django_filters.FilterSet], filters: Mapping[str, Any] | None, queryset: QuerySet[_M]
) -> QuerySet[_M]:
    """`queryset` narrowed by `filters` (a dict or QueryDict); bad values raise ApplicationError naming each field
    (django-filter would otherwise answer an empty list, which hides the mistake)."""
    if filters is None:
        return queryset
    filterset = filterset_class(filters, queryset=queryset)
    if not filterset.is_valid():
        errors: dict[str, Any] = {field: list(messages) for field, messages in filterset.errors.items()}
        raise ApplicationError("Invalid filter.", code="validation_error", fields=errors)
    return filterset.qs


class DetectionFilter(django_filters.FilterSet):
    since = InstantFilter(field_name="timestamp", lookup_expr="gte", help_text="Inclusive.")
    until = InstantFilter(field_name="timestamp", lookup_expr="lt", help_text="Exclusive.")
    status = ChoiceInFilter(choices=Status.choices, help_text="One status or a comma list, e.g. `warning,critical`.")
    min_level = LevelFilter(
        field_name="level", lookup_expr="gte", help_text="Level (%) at least this (undefined and late have none)."
    )

    class Meta:
        model = Detection
        fields = ["since", "until", "status", "min_level"]


class AnomalyFilter(django_filters.FilterSet):
    sensor = django_filters.CharFilter(field_name="sensor__key", help_text="Sensor key.")
    platform = django_filters.CharFilter(field_name="sensor__platform__slug", help_text="Platform slug.")
    status = ChoiceInFilter(choices=Anomaly.State.choices, help_text="One lifecycle status or a comma list.")
    active = BooleanFilter(
        field_name="closed_at", lookup_expr="isnull", help_text="true: the alarm is still on (not closed)."
    )
    # An anomaly is in [since, until) when any part of it is: it started before `until` and ended at or after
    # `since` (a long alarm that began earlier still shows up).
    since = InstantFilter(field_name="ended_at", lookup_expr="gte", help_text="Inclusive.")
    until = InstantFilter(field_name="started_at", lookup_expr="lt", help_text="Exclusive.")

    class Meta:
        model = Anomaly
        fields = ["sensor", "platform", "status", "active", "since", "until"]


class SensorEventFilter(django_filters.FilterSet):
    sensor = django_filters.CharFilter(field_name="sensor__key", help_text="Sensor key.")
    kind = ChoiceInFilter(choices=SensorEvent.Kind.choices, help_text="One kind or a comma list.")

    class Meta:
        model = SensorEvent
        fields = ["sensor", "kind"]


class SystemEventFilter(django_filters.FilterSet):
    kind = ChoiceInFilter(choices=SystemEvent.Kind.choices, help_text="One kind or a comma list.")
    job = django_filters.CharFilter(help_text="The job that reported it, e.g. `select_baselines`.")

    class Meta:
        model = SystemEvent
        fields = ["kind", "job"]


class BaselineFilter(django_filters.FilterSet):
    kind = ChoiceInFilter(choices=Baseline.Kind.choices, help_text="One kind or a comma list.")
    sensor = django_filters.CharFilter(field_name="sensor__key", help_text="Sensor key (seeds have none).")

    class Meta:
        model = Baseline
        fields = ["kind", "sensor"]
