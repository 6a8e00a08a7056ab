"""The overview (`/dashboard/`): every sensor with its latest value, state and a 24-hour sparkline, grouped by
platform, with counts per state and the unresolved anomalies first; kept live by `static/js/overview.js` over
`ws/dashboard/overview/` (dashboard/consumers.py)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.access import reader_required
from dashboard.forms import OverviewFilterForm
from dashboard.selectors import STATES, overview_get
from sensors.selectors import platform_list


@require_GET
@reader_required
def overview_page(request: HttpRequest) -> HttpResponse:
    """Viewers and up. Filters (GET): `platform` (slug), `kind`, `state`; a bad value answers 400 naming it."""
    form = OverviewFilterForm(request.GET or None, platforms=list(platform_list()))
    context = {"form": form, "states": STATES, "silent_seconds": settings.DASHBOARD_SILENT_SECONDS}
    if form.is_bound and not form.is_valid():
        return render(request, "dashboard/overview.html", {**context, "overview": None}, status=400)
    data = form.cleaned_data if form.is_bound else {}
    filters = {name: data[name] for name in ("platform", "kind") if data.get(name)}
    overview = overview_get(filters=filters, state=data.get("state") or None)
    # The query string without `state`, for the per-state links (each keeps the other filters).
    base_query = request.GET.copy()
    base_query.pop("state", None)
    return render(
        request,
        "dashboard/overview.html",
        {
            **context,
            "overview": overview,
            "filters": filters,
            "state": data.get("state") or "",
            "base_query": base_query.urlencode(),
        },
    )
