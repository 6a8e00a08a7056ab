"""The anomalies page: filters, pages, links to the sensor page, and the operators' actions (refused to viewers)."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from detection.models import Anomaly
from detection.tests.factories import AnomalyFactory
from sensors.tests.factories import PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db

PAGE = "/dashboard/anomalies/"
State = Anomaly.State


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def shown(response) -> list[int]:
    return [anomaly.pk for anomaly, _link in response.context["items"]]


def acknowledge_url(anomaly) -> str:
    return reverse("dashboard:anomaly-acknowledge", kwargs={"anomaly_id": anomaly.pk})


def resolve_url(anomaly) -> str:
    return reverse("dashboard:anomaly-resolve", kwargs={"anomaly_id": anomaly.pk})


def test_the_url_names_are_the_documented_ones():
    assert reverse("dashboard:anomalies") == PAGE


def test_anonymous_callers_are_sent_to_log_in_and_users_without_a_role_refused():
    response = Client().get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert logged_in(UserFactory()).get(PAGE).status_code == 403


def test_a_viewer_sees_the_anomalies_newest_first_and_no_button(viewer):
    older = AnomalyFactory(started_at=datetime(2026, 1, 1, tzinfo=UTC))
    newer = AnomalyFactory(started_at=datetime(2026, 1, 2, tzinfo=UTC))
    response = logged_in(viewer).get(PAGE)
    assert response.status_code == 200
    assert shown(response) == [newer.pk, older.pk]
    html = response.content.decode()
    assert "<button" not in html.split('data-testid="anomaly-table"')[1]
    assert acknowledge_url(newer) not in html
    assert resolve_url(newer) not in html


def test_an_operator_gets_buttons_that_fit_each_status(operator):
    open_one = AnomalyFactory(status=State.OPEN)
    seen = AnomalyFactory(status=State.ACKNOWLEDGED)
    done = AnomalyFactory(status=State.RESOLVED)
    html = logged_in(operator).get(PAGE).content.decode()
    assert acknowledge_url(open_one) in html
    assert resolve_url(open_one) in html
    assert acknowledge_url(seen) not in html
    assert resolve_url(seen) in html
    assert acknowledge_url(done) not in html
    assert resolve_url(done) not in html
    assert "csrfmiddlewaretoken" in html


def test_each_anomaly_links_to_its_sensor_page_centred_on_it(viewer):
    sensor = SensorFactory(key="rig-7.gas:north")
    start = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
    AnomalyFactory(sensor=sensor, started_at=start, ended_at=start + timedelta(hours=2))
    response = logged_in(viewer).get(PAGE)
    [(_, link)] = response.context["items"]
    url = urlsplit(link)
    assert url.path == reverse("dashboard:sensor", kwargs={"key": "rig-7.gas:north"})
    query = parse_qs(url.query)
    assert datetime.fromisoformat(query["at"][0]) == start + timedelta(hours=1)
    assert query["range"] == ["6h"]  # the shortest range that shows it with as much again around it
    # and the sensor page opens there
    page = logged_in(viewer).get(link)
    assert page.status_code == 200
    assert page.context["window"].start == start + timedelta(hours=1) - timedelta(hours=3)


def test_filters_by_status_sensor_platform_and_time(viewer):
    north, south = PlatformFactory(slug="north", name="North"), PlatformFactory(slug="south", name="South")
    a = SensorFactory(key="a", platform=north)
    b = SensorFactory(key="b", platform=south)
    day = datetime(2026, 3, 1, tzinfo=UTC)
    a_open = AnomalyFactory(sensor=a, status=State.OPEN, started_at=day, ended_at=day + timedelta(hours=1))
    a_seen = AnomalyFactory(
        sensor=a, status=State.ACKNOWLEDGED, started_at=day + timedelta(days=2), ended_at=day + timedelta(days=2)
    )
    b_done = AnomalyFactory(sensor=b, status=State.RESOLVED, started_at=day, ended_at=day + timedelta(hours=1))
    client = logged_in(viewer)

    assert shown(client.get(PAGE, {"status": "open"})) == [a_open.pk]
    assert set(shown(client.get(PAGE, {"status": "open,acknowledged"}))) == {a_open.pk, a_seen.pk}
    assert set(shown(client.get(PAGE, {"sensor": "a"}))) == {a_open.pk, a_seen.pk}
    assert shown(client.get(PAGE, {"platform": "south"})) == [b_done.pk]
    assert set(shown(client.get(PAGE, {"since": "2026-03-02T00:00", "until": "2026-03-04T00:00"}))) == {a_seen.pk}
    assert shown(client.get(PAGE, {"platform": "north", "until": "2026-03-02T00:00"})) == [a_open.pk]
    # The filters stay in the form and the page links.
    html = client.get(PAGE, {"platform": "north"}).content.decode()
    assert '<option value="north" selected>North</option>' in html


@pytest.mark.parametrize(("query", "field"), [({"since": "last tuesday"}, "since"), ({"status": "gone"}, "status")])
def test_a_bad_filter_answers_400_naming_it(viewer, query, field):
    response = logged_in(viewer).get(PAGE, query)
    assert response.status_code == 400
    assert field in response.context["form"].errors


def test_pages_of_25(viewer):
    AnomalyFactory.create_batch(30)
    client = logged_in(viewer)
    first = client.get(PAGE)
    assert len(shown(first)) == 25
    assert "page=2" in first.content.decode()
    second = client.get(PAGE, {"page": 2})
    assert len(shown(second)) == 5
    assert not set(shown(first)) & set(shown(second))


def test_the_page_costs_the_same_queries_for_3_or_25_anomalies(operator):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(PAGE).status_code == 200
        return len(captured)

    client = logged_in(operator)
    AnomalyFactory.create_batch(3, acknowledged_by=operator, sensor__platform=PlatformFactory(slug="p1"))
    client.get(PAGE)  # the session and user, loaded once
    few = queries()
    for i in range(22):
        AnomalyFactory(acknowledged_by=operator, resolved_by=operator, sensor__platform=PlatformFactory(slug=f"q{i}"))
    assert queries() == few
    assert few <= 8


# --- actions ----------------------------------------------------------------------------------------------------


def test_an_operator_acknowledges_then_resolves_as_external_cause(operator):
    anomaly = AnomalyFactory(status=State.OPEN)
    client = logged_in(operator)
    back = f"{PAGE}?status=open"

    response = client.post(acknowledge_url(anomaly), {"next": back})
    assert response.status_code == 302
    assert response["Location"] == back
    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.acknowledged_by) == (State.ACKNOWLEDGED, operator)
    assert f"Anomaly {anomaly.pk} of {anomaly.sensor.key} acknowledged." in client.get(back).content.decode()

    response = client.post(resolve_url(anomaly), {"cause": "external_cause"})
    assert response["Location"] == PAGE
    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.resolved_by) == (State.EXTERNAL_CAUSE, operator)


def test_a_refused_transition_is_reported_and_changes_nothing(operator):
    anomaly = AnomalyFactory(status=State.RESOLVED)
    client = logged_in(operator)
    response = client.post(acknowledge_url(anomaly), follow=True)
    assert f"Anomaly {anomaly.pk} is resolved: it cannot be acknowledged." in response.content.decode()
    response = client.post(resolve_url(anomaly), {"cause": "bogus"}, follow=True)
    assert "Not closed" in response.content.decode()
    anomaly.refresh_from_db()
    assert anomaly.status == State.RESOLVED


def test_next_never_leads_off_site(operator):
    anomaly = AnomalyFactory(status=State.OPEN)
    response = logged_in(operator).post(acknowledge_url(anomaly), {"next": "https://evil.example.com/"})
    assert response["Location"] == PAGE


def test_a_viewers_forged_post_is_refused_and_changes_nothing(viewer):
    anomaly = AnomalyFactory(status=State.OPEN)
    client = logged_in(viewer)
    assert client.post(acknowledge_url(anomaly)).status_code == 403
    assert client.post(resolve_url(anomaly), {"cause": "resolved"}).status_code == 403
    anomaly.refresh_from_db()
    assert anomaly.status == State.OPEN
    assert anomaly.acknowledged_by is None


def test_actions_need_the_csrf_token_and_refuse_get(operator):
    anomaly = AnomalyFactory(status=State.OPEN)
    strict = logged_in(operator, enforce_csrf_checks=True)
    assert strict.post(acknowledge_url(anomaly)).status_code == 403
    assert logged_in(operator).get(acknowledge_url(anomaly)).status_code == 405
    anomaly.refresh_from_db()
    assert anomaly.status == State.OPEN


def test_an_unknown_anomaly_is_404_for_operators(operator):
    assert logged_in(operator).post("/dashboard/anomalies/999999/acknowledge/").status_code == 404
