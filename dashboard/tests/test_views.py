"""The overview and events pages: who may open them, what they show, their filters."""

import re

import pytest
from django.urls import reverse

from dashboard.tests.demo import demo_seed
from detection.models import SystemEvent

pytestmark = pytest.mark.django_db

OVERVIEW = "/dashboard/"
EVENTS = "/dashboard/events/"


@pytest.mark.parametrize("path", [OVERVIEW, EVENTS])
def test_anonymous_goes_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("path", [OVERVIEW, EVENTS])
def test_user_without_role_is_refused(client, user, path):
    client.force_login(user)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", [OVERVIEW, EVENTS])
@pytest.mark.parametrize("who", ["viewer", "operator", "staff_user"])
def test_readers_open_the_pages(client, request, path, who):
    client.force_login(request.getfixturevalue(who))
    response = client.get(path)
    assert response.status_code == 200
    assert response.templates[0].name.startswith("dashboard/")


def test_urls_are_named():
    assert reverse("dashboard:overview") == OVERVIEW
    assert reverse("dashboard:events") == EVENTS


def _rows(html: str) -> dict[str, str]:
    """Sensor key → its state as the page states it (text in the state badge)."""
    found = re.findall(r'<tr data-sensor="([^"]+)".*?data-field="state">(\w+)</span>', html, flags=re.S)
    return dict(found)


def test_overview_shows_sensors_states_values_and_anomalies(client, viewer):
    demo_seed()
    client.force_login(viewer)
    html = client.get(OVERVIEW).content.decode()
    assert _rows(html) == {
        "bravo-flow": "ok",
        "bravo-humidity": "silent",
        "bravo-level": "undefined",
        "alpha-methane": "critical",
        "alpha-pressure": "warning",
        "alpha-temperature": "ok",
        "lab-wind": "undefined",
        "lab-temperature": "ok",
    }
    # Colour plus text: each state has its class and its word.
    assert '<span class="badge state-critical" data-field="state">critical</span>' in html
    assert "°C" in html
    assert "m³/h" in html
    assert re.search(r'data-field="age">\d+ s<', html)  # the demo's readings end at the current minute
    assert 'data-field="age">3 h<' in html  # the silent sensor
    assert html.count("<polyline") >= 8  # a sparkline per sensor with readings
    # Open anomalies come first on the page, each linked to its sensor page.
    assert html.index('data-testid="open-anomalies"') < html.index('data-testid="overview"')
    assert 'href="/dashboard/sensors/alpha-methane/?at=' in html
    assert 'href="/dashboard/sensors/bravo-flow/"' in html
    counts = dict(re.findall(r'data-state-count="(\w+)">\w+ <strong>(\d+)</strong>', html))
    assert counts == {"critical": "1", "warning": "1", "silent": "1", "undefined": "2", "ok": "3"}
    assert 'data-live-url="/ws/dashboard/overview/"' in html


def test_overview_filters(client, viewer):
    demo_seed()
    client.force_login(viewer)
    html = client.get(OVERVIEW, {"platform": "alpha", "state": "ok"}).content.decode()
    assert _rows(html) == {"alpha-temperature": "ok"}
    assert 'data-live-url="/ws/dashboard/overview/?platform=alpha"' in html
    assert list(_rows(client.get(OVERVIEW, {"kind": "gas"}).content.decode())) == ["alpha-methane"]
    html = client.get(OVERVIEW, {"state": "silent"}).content.decode()
    assert _rows(html) == {"bravo-humidity": "silent"}
    # The per-state links keep the other filters.
    html = client.get(OVERVIEW, {"platform": "bravo"}).content.decode()
    assert 'href="?platform=bravo&amp;state=ok"' in html


@pytest.mark.parametrize("query", [{"kind": "lava"}, {"state": "grumpy"}, {"platform": "atlantis"}])
def test_overview_bad_filter_is_400_naming_the_field(client, viewer, query):
    demo_seed()
    client.force_login(viewer)
    response = client.get(OVERVIEW, query)
    assert response.status_code == 400
    [field] = query
    assert f'data-testid="error-{field}"' in response.content.decode()


def test_overview_without_sensors(client, viewer):
    client.force_login(viewer)
    assert 'data-testid="no-sensors"' in client.get(OVERVIEW).content.decode()


def test_events_page_lists_filters_and_paginates(client, viewer):
    demo_seed()
    client.force_login(viewer)
    html = client.get(EVENTS).content.decode()
    rows = re.findall(r'<tr data-event="(\w+)-(\d+)">', html)
    assert [source for source, _ in rows] == ["system", "system", "system", "sensor", "sensor"]
    assert "every seed baseline raised an alarm" in html
    assert 'data-live-url="/ws/dashboard/events/?history=0"' in html
    html = client.get(EVENTS, {"source": "sensor", "kind": "critical"}).content.decode()
    assert len(re.findall(r"<tr data-event=", html)) == 1
    assert "critical at level 246" in html
    assert "history=0&amp;source=sensor&amp;kind=critical" in html
    SystemEvent.objects.bulk_create(SystemEvent(kind="info", message=f"job {n}") for n in range(60))
    first = client.get(EVENTS, {"source": "system"}).content.decode()
    assert len(re.findall(r"<tr data-event=", first)) == 50
    assert "page 1 of 2 · 63 events" in first
    assert 'href="?source=system&amp;page=2"' in first
    second = client.get(EVENTS, {"source": "system", "page": 2}).content.decode()
    assert len(re.findall(r"<tr data-event=", second)) == 13
    assert "data-live-url" not in second  # older pages do not move


@pytest.mark.parametrize("query", [{"source": "moon"}, {"kind": "boom"}])
def test_events_bad_filter_is_400(client, viewer, query):
    client.force_login(viewer)
    response = client.get(EVENTS, query)
    assert response.status_code == 400
    [field] = query
    assert f'data-testid="error-{field}"' in response.content.decode()


def test_navigation_links_the_pages_for_logged_in_users(client, viewer):
    client.force_login(viewer)
    html = client.get("/").content.decode()
    nav = html[html.index('data-testid="nav-pages"') :]
    nav = nav[: nav.index("</span>")]
    for path in (OVERVIEW, EVENTS, reverse("rates:page")):
        assert f'href="{path}"' in nav
    assert 'data-testid="open-dashboard"' in html
    assert '<a href="/dashboard/events/" aria-current="page">Events</a>' in client.get(EVENTS).content.decode()
    client.logout()
    assert 'data-testid="nav-pages"' not in client.get("/").content.decode()
