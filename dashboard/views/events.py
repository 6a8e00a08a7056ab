"""The events feed (`/dashboard/events/`): sensor events (a sensor's state changed) and system events (what jobs
reported) in one list, newest first, paginated; new events are prepended live by `static/js/events.js` over
`ws/dashboard/events/` (dashboard/consumers.py)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.access import reader_required
from dashboard.forms import EventFilterForm
from dashboard.selectors import event_feed

EVENTS_PER_PAGE = 50


@require_GET
@reader_required
def events_page(request: HttpRequest) -> HttpResponse:
    """Viewers and up. Filters (GET): `source` (sensor, system), `kind`, `sensor` (a key); `page`."""
    form = EventFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "dashboard/events.html", {"form": form, "page": None}, status=400)
    data = form.cleaned_data if form.is_bound else {}
    filters = {name: data[name] for name in ("source", "kind", "sensor") if data.get(name)}
    page = Paginator(event_feed(filters=filters), EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/events.html",
        {"form": form, "page": page, "filters": filters, "query": query.urlencode(), "live": page.number == 1},
    )
