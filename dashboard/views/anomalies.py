"""The anomalies page: every anomaly, newest first, filtered and paginated; operators acknowledge, resolve or mark
an external cause (docs/dashboard.md, "Anomalies page"). Viewers see no buttons, and a POST of theirs is refused
(403) whatever the page showed."""

from __future__ import annotations

from datetime import timedelta
from typing import cast
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from accounts.roles import can_operate
from common.exceptions import ApplicationError
from dashboard.access import operator_required, reader_required
from dashboard.forms import AnomalyFilterForm, AnomalyResolveForm
from dashboard.selectors import RANGES
from detection.models import Anomaly
from detection.selectors import anomaly_get, anomaly_list
from detection.services.anomalies import anomaly_acknowledge, anomaly_resolve
from sensors.selectors import platform_list

PAGE_SIZE = 25
FILTERS = ("status", "sensor", "platform", "since", "until")


def _sensor_link_range(anomaly: Anomaly) -> str:
    """The shortest chart range that shows the whole anomaly with as much again around it."""
    duration = anomaly.ended_at - anomaly.started_at
    for name, (span, _bucket) in RANGES.items():
        if span >= 2 * duration + timedelta(minutes=10):
            return name
    return list(RANGES)[-1]


def _sensor_link(anomaly: Anomaly) -> str:
    middle = anomaly.started_at + (anomaly.ended_at - anomaly.started_at) / 2
    query = urlencode({"range": _sensor_link_range(anomaly), "at": middle.isoformat()})
    return f"{reverse('dashboard:sensor', kwargs={'key': anomaly.sensor.key})}?{query}"


@require_GET
@reader_required
def anomalies_page(request: HttpRequest) -> HttpResponse:
    """Viewers and up: anomalies newest first, `PAGE_SIZE` a page, filtered by status, sensor, platform and time."""
    platforms = list(platform_list().values_list("slug", "name"))
    form = AnomalyFilterForm(request.GET, platforms=platforms)
    filters = {name: request.GET[name] for name in FILTERS if request.GET.get(name)}
    status = 200
    try:
        rows = anomaly_list(filters=filters).select_related("sensor__platform")
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
        items = [(anomaly, _sensor_link(anomaly)) for anomaly in page]
    except ApplicationError as exc:
        for field, problems in exc.fields.items():
            form.add_error(field if field in form.fields else None, problems)
        page, items, status = None, [], 400
    query = urlencode(filters)
    context = {
        "form": form,
        "page": page,
        "items": items,
        "filter_query": query,
        "here": f"{request.path}?{request.GET.urlencode()}" if request.GET else request.path,
        "can_operate": can_operate(request.user),
        "resolve_form": AnomalyResolveForm(),
    }
    return render(request, "dashboard/anomalies.html", context, status=status)


def _operator_anomaly(request: HttpRequest, anomaly_id: int) -> tuple[User, Anomaly]:
    user = cast(User, request.user)  # operator_required let only logged-in operators in
    anomaly = anomaly_get(anomaly_id=anomaly_id)
    if anomaly is None:
        raise Http404(f"No anomaly {anomaly_id}.")
    return user, anomaly


def _back(request: HttpRequest) -> HttpResponse:
    """Back to the page the form was on (`next`, a path of this site), else the anomalies page."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("dashboard:anomalies")


@require_POST
@operator_required
def anomaly_acknowledge_action(request: HttpRequest, anomaly_id: int) -> HttpResponse:
    """Operators: an open anomaly has been seen."""
    user, anomaly = _operator_anomaly(request, anomaly_id)
    try:
        anomaly_acknowledge(anomaly=anomaly, user=user, note=request.POST.get("note", "")[:2000])
    except ApplicationError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Anomaly {anomaly.pk} of {anomaly.sensor.key} acknowledged.")
    return _back(request)


@require_POST
@operator_required
def anomaly_resolve_action(request: HttpRequest, anomaly_id: int) -> HttpResponse:
    """Operators: close an open or acknowledged anomaly as resolved or as having an external cause."""
    user, anomaly = _operator_anomaly(request, anomaly_id)
    form = AnomalyResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not closed: {form.errors.as_text()}")
        return _back(request)
    try:
        anomaly_resolve(anomaly=anomaly, user=user, cause=form.cleaned_data["cause"], note=form.cleaned_data["note"])
    except ApplicationError as exc:
        messages.error(request, exc.detail)
    else:
        label = dict(Anomaly.State.choices)[form.cleaned_data["cause"]].lower()
        messages.success(request, f"Anomaly {anomaly.pk} of {anomaly.sensor.key} closed: {label}.")
    return _back(request)
