from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.roles import can_read
from rates.charts import line_chart
from rates.forms import RateChartForm
from rates.selectors import fetch_list, is_stale, rate_history, rate_list, rates_are_demo, rates_status


@require_GET
@login_required
def rates_page(request: HttpRequest) -> HttpResponse:
    """Latest published rates of each provider, and a chart of one pair over time (viewer role)."""
    if not can_read(request.user):
        raise PermissionDenied("Reading rates requires the viewer role.")
    default_quote = settings.RATES_QUOTES[0] if settings.RATES_QUOTES else "EUR"
    form = RateChartForm(request.GET or None, initial={"base": settings.RATES_BASE, "quote": default_quote, "days": 90})
    if form.is_bound and form.is_valid():
        base, quote, days = form.cleaned_data["base"], form.cleaned_data["quote"], form.cleaned_data["days"]
    else:
        base, quote, days = settings.RATES_BASE, default_quote, 90
    rows = list(rate_list().filter(is_inverse=False))
    today = timezone.now().date()
    provider, series = rate_history(base=base, quote=quote, start=today - timedelta(days=days), end=today)
    context = {
        "form": form,
        "rows": rows,
        "stale": is_stale(max((row.fetched_at for row in rows), default=None)),
        # Demo rates are made up (no provider was reachable): the page says so above everything else.
        "demo": rates_are_demo([row.provider for row in rows] + ([provider] if provider else [])),
        "never_fetched": rates_status()["never_fetched"],
        "base": base,
        "quote": quote,
        "days": days,
        "chart_provider": provider,
        "chart": line_chart(series),
        "fetches": fetch_list()[:5],
    }
    return render(request, "rates/page.html", context)
