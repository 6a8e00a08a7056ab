"""The filter forms of the dashboard pages: GET forms using the API's filter vocabulary (`sensors.filters`,
`detection.filters`), so that a page's query string is also a valid API query where both exist."""

from __future__ import annotations

from typing import cast

from django import forms

from dashboard.selectors import EVENT_SOURCES, STATES
from detection.models import SensorEvent, SystemEvent
from sensors.models import Platform, SensorKind


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
