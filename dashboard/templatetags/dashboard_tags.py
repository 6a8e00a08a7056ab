"""Small helpers of the dashboard templates."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.filter
def age_text(age: timedelta | None) -> str:
    """A reading's age in the largest whole unit: `42 s`, `5 min`, `3 h`, `2 d` (`never` without a reading); the
    same words as static/js/dashboard.js, which keeps them current in the browser."""
    if age is None:
        return "never"
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@register.simple_tag
def sensor_url(key: str) -> str:
    """The sensor page of `key` (`dashboard:sensor`); its path before that page's route exists."""
    try:
        return reverse("dashboard:sensor", kwargs={"key": key})
    except NoReverseMatch:
        return f"/dashboard/sensors/{quote(key, safe='')}/"


@register.simple_tag
def dashboard_url(name: str) -> str:
    """The URL of a dashboard page by its route name, or "" while the page does not exist (the nav hides it)."""
    try:
        return reverse(f"dashboard:{name}")
    except NoReverseMatch:
        return ""


@register.filter
def value_text(value: float | None) -> str:
    """A reading's value for a table: up to 4 significant digits past the point, no float noise."""
    if value is None:
        return "–"
    return f"{value:.6g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


@register.filter
def sum_values(values) -> int:
    return sum(values)
