"""A sensor's page: its live chart (readings, detection levels, anomalies), details, detector settings and recent
events; operators change the settings and switch feedback mode here (docs/dashboard.md, "Sensor page").

The two services that reach the detector (`detection.services.settings`, `detection.services.feedback`) are
imported inside the views that call them, as the API's views do: they import stumpy, which the web process does
not load at start-up (the `web-no-stumpy` contract in pyproject.toml).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import can_operate
from common.exceptions import ApplicationError
from dashboard.access import operator_required, reader_required
from dashboard.forms import ChartRangeForm, DetectorSettingsForm, FeedbackForm
from dashboard.selectors import DEFAULT_RANGE, RANGES, chart_window, sensor_chart
from detection.selectors import anomaly_list, detector_settings_get, detector_state_get, sensor_events_recent
from sensors.models import Sensor
from sensors.selectors import sensor_list

RECENT_EVENTS = 20
RECENT_ANOMALIES = 10
# How many recent readings and detections the live sockets send first: enough to cover what was stored between
# the page's queries and the socket's start (the chart keeps each point once).
LIVE_HISTORY = 200


def _sensor_or_404(key: str) -> Sensor:
    sensor = sensor_list().select_related("installation").filter(key=key).first()
    if sensor is None:
        raise Http404(f"No sensor {key!r}.")
    return sensor


def _page(
    request: HttpRequest,
    sensor: Sensor,
    *,
    range_form: ChartRangeForm | None = None,
    settings_form: DetectorSettingsForm | None = None,
    feedback_form: FeedbackForm | None = None,
    status: int = 200,
) -> HttpResponse:
    now = timezone.now()
    range_form = range_form or ChartRangeForm({})
    if range_form.is_valid():
        name, at = range_form.cleaned_data["range"], range_form.cleaned_data["at"]
    else:
        name, at, status = DEFAULT_RANGE, None, 400
    window = chart_window(name=name, now=now, at=at)
    chart = sensor_chart(sensor=sensor, window=window)
    config = detector_settings_get(sensor=sensor)
    operator = can_operate(request.user)
    readings_url = reverse("sensors-api:sensor-readings", kwargs={"key": sensor.key})
    csv_query = {"format": "csv", "start": window.start.isoformat(), "end": window.end.isoformat()}
    chart["sensor"] = sensor.key
    chart["unit"] = sensor.unit
    chart["warning_level"] = config.warning_level
    chart["critical_level"] = config.critical_level
    chart["readings_ws"] = f"/ws/sensors/{sensor.key}/readings/?history={LIVE_HISTORY}"
    chart["detections_ws"] = f"/ws/sensors/{sensor.key}/detections/?history={LIVE_HISTORY}"
    here = reverse("dashboard:sensor", kwargs={"key": sensor.key})
    ranges = [
        {"name": option, "url": f"{here}?{urlencode({'range': option, **({'at': at.isoformat()} if at else {})})}"}
        for option in RANGES
    ]
    context: dict[str, Any] = {
        "sensor": sensor,
        "chart": chart,
        "window": window,
        "range_form": range_form,
        "ranges": ranges,
        "now_url": f"{here}?{urlencode({'range': name})}",
        "csv_url": f"{readings_url}?{urlencode(csv_query)}",
        "csv_bucket_url": (
            f"{readings_url}?{urlencode({**csv_query, 'bucket': chart['bucket']})}" if chart["bucket"] else None
        ),
        "config": config,
        "state": detector_state_get(sensor=sensor),
        "events": list(reversed(sensor_events_recent(sensor=sensor, limit=RECENT_EVENTS))),
        "anomalies": list(anomaly_list(filters={"sensor": sensor.key})[:RECENT_ANOMALIES]),
        "anomalies_url": f"{reverse('dashboard:anomalies')}?{urlencode({'sensor': sensor.key})}",
        "can_operate": operator,
    }
    if operator:
        context["settings_form"] = settings_form or DetectorSettingsForm(sensor=sensor, config=config)
        context["feedback_form"] = feedback_form or FeedbackForm()
    return render(request, "dashboard/sensor.html", context, status=status)


@require_GET
@reader_required
def sensor_page(request: HttpRequest, key: str) -> HttpResponse:
    """Viewers and up: the sensor's page over `?range=` (1h … 90d, default 1h) ending now or centred on `?at=`."""
    sensor = _sensor_or_404(key)
    return _page(request, sensor, range_form=ChartRangeForm(request.GET))


def _apply_errors(form: Any, exc: ApplicationError) -> None:
    """A service's refusal as form errors: on the fields it names, else on the whole form."""
    if not exc.fields:
        form.add_error(None, exc.detail)
    for field, problems in exc.fields.items():
        for problem in problems if isinstance(problems, list) else [problems]:
            form.add_error(field if field in form.fields else None, str(problem))


@require_POST
@operator_required
def sensor_settings(request: HttpRequest, key: str) -> HttpResponse:
    """Operators: change the sensor's detector settings (only the fields changed on the form are sent)."""
    from detection.services.settings import detector_settings_update

    sensor = _sensor_or_404(key)
    form = DetectorSettingsForm(request.POST, sensor=sensor, config=detector_settings_get(sensor=sensor))
    if form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            if changes:
                detector_settings_update(sensor=sensor, **changes)
        except ApplicationError as exc:
            _apply_errors(form, exc)
        else:
            changed = ", ".join(sorted(changes)) if changes else "nothing changed"
            messages.success(request, f"Detector settings of {sensor.key} saved ({changed}).")
            return redirect("dashboard:sensor", key=sensor.key)
    return _page(request, sensor, settings_form=form, status=400)


@require_POST
@operator_required
def sensor_feedback(request: HttpRequest, key: str) -> HttpResponse:
    """Operators: feedback mode on (the sensor's recent readings become part of its baseline) or off."""
    from detection.services.feedback import feedback_set

    sensor = _sensor_or_404(key)
    form = FeedbackForm(request.POST)
    status = 400
    if form.is_valid():
        enabled = form.cleaned_data["enabled"]
        try:
            feedback_set(sensor=sensor, enabled=enabled, points=form.cleaned_data["points"])
        except ApplicationError as exc:
            _apply_errors(form, exc)
            status = exc.status_code
        else:
            messages.success(request, f"Feedback mode of {sensor.key} is {'on' if enabled else 'off'}.")
            return redirect("dashboard:sensor", key=sensor.key)
    return _page(request, sensor, feedback_form=form, status=status)
