"""The rates API: list, convert, update (202 + progress URL), the job progress, and the old service's paths."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from common.models import Job
from rates.providers import PublishedRate
from rates.services import rates_store
from rates.tests.factories import ExchangeRateFactory

pytestmark = pytest.mark.django_db

FRI, SAT, MON = date(2024, 5, 31), date(2024, 6, 1), date(2024, 6, 3)


def publish(provider: str, base: str, day: date, fetched_at=None, **rates: str) -> None:
    rates_store(
        provider=provider,
        rates=[PublishedRate(base, code, Decimal(v), day) for code, v in rates.items()],
        fetched_at=fetched_at,
    )


@pytest.fixture
def rates(settings):
    settings.RATES_PROVIDERS = ["xe", "ecb", "oxr"]
    settings.RATES_BASE = "USD"
    settings.RATES_QUOTES = ["KES", "NGN"]
    publish("ecb", "EUR", FRI, USD="1.0848", JPY="170.55")
    publish("ecb", "EUR", MON, USD="1.0871", JPY="169.85")
    publish("xe", "USD", MON, KES="130.5", NGN="1480.253291")


@pytest.fixture
def viewer_client(client_as, viewer):
    return client_as(viewer)


def test_list_latest(viewer_client, rates):
    response = viewer_client.get(reverse("rates-api:rate-list"), {"base": "EUR"})
    assert response.status_code == 200
    body = response.json()
    assert body["stale"] is False
    assert body["date"] is None
    assert body["count"] == 2
    usd = next(item for item in body["results"] if item["quote"] == "USD")
    assert usd == {
        "provider": "ecb",
        "base": "EUR",
        "quote": "USD",
        "rate": "1.0871",
        "as_of": "2024-06-03",
        "fetched_at": usd["fetched_at"],
        "is_inverse": False,
    }


def test_list_as_of_a_saturday(viewer_client, rates):
    body = viewer_client.get(
        reverse("rates-api:rate-list"), {"base": "eur", "quote": "usd", "date": "2024-06-01"}
    ).json()
    assert [(item["rate"], item["as_of"]) for item in body["results"]] == [("1.0848", "2024-05-31")]
    assert body["date"] == "2024-06-01"
    assert body["stale"] is False  # history is never stale


def test_list_query_count_does_not_grow_with_rows(viewer_client, rates, django_assert_num_queries):
    # session, user and two permission queries; then a day per provider (3, and demo's), count, rows, newest fetch
    with django_assert_num_queries(11):
        viewer_client.get(reverse("rates-api:rate-list"))
    publish("oxr", "USD", MON, **{code: "2" for code in ["GBP", "CHF", "JPY", "ZAR", "INR", "CNY", "AUD"]})
    with django_assert_num_queries(11):
        body = viewer_client.get(reverse("rates-api:rate-list")).json()
    assert body["count"] == 2 * (2 + 2 + 7)


def test_list_says_stale_past_the_configured_age(viewer_client, settings):
    settings.RATES_STALE_AFTER_HOURS = 26
    publish("ecb", "EUR", MON, fetched_at=timezone.now() - timedelta(hours=30), USD="1.0871")
    assert viewer_client.get(reverse("rates-api:rate-list")).json()["stale"] is True


def test_list_rejects_bad_filters(viewer_client):
    response = viewer_client.get(reverse("rates-api:rate-list"), {"base": "E1R", "date": "yesterday"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert set(body["fields"]) == {"base", "date"}
    response = viewer_client.get(reverse("rates-api:rate-list"), {"base": "ABC"})
    assert response.status_code == 400
    assert response.json()["error"] == "unknown_currency"
    assert list(response.json()["fields"]) == ["base"]


def test_convert_through_a_cross_rate(viewer_client, rates):
    response = viewer_client.get(reverse("rates-api:rate-convert"), {"from": "USD", "to": "JPY", "amount": "100"})
    assert response.status_code == 200
    assert response.json() == {
        "from": "USD",
        "to": "JPY",
        "amount": "100",
        "result": "15624",
        "rate": "156.241376138349737835",
        "as_of": "2024-06-03",
        "provider": "ecb",
        "via": "EUR",
        "stale": False,
        "demo": False,
    }


def test_convert_keeps_the_amount_exact_and_uses_a_date(viewer_client, rates):
    body = viewer_client.get(
        reverse("rates-api:rate-convert"), {"from": "kes", "to": "ngn", "amount": "1000.00", "date": "2024-06-03"}
    ).json()
    assert (body["amount"], body["result"], body["provider"], body["via"]) == ("1000.00", "11342.94", "xe", "USD")
    body = viewer_client.get(
        reverse("rates-api:rate-convert"), {"from": "EUR", "to": "USD", "date": "2024-06-02"}
    ).json()
    assert (body["amount"], body["result"], body["rate"], body["as_of"]) == ("1", "1.08", "1.0848", "2024-05-31")


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"from": "USD"}, 400, "validation_error"),
        ({"from": "USD", "to": "JPY", "amount": "1e400"}, 400, "validation_error"),
        ({"from": "USD", "to": "JPY", "amount": "NaN"}, 400, "validation_error"),
        ({"from": "USD", "to": "JPY", "amount": "0.1234567890123456789"}, 400, "validation_error"),
        ({"from": "USD", "to": "XYZ"}, 400, "unknown_currency"),
        ({"from": "USD", "to": "JPY", "date": "1999-01-04"}, 404, "no_rate"),
        ({"from": "GHS", "to": "JPY"}, 404, "no_rate"),
    ],
)
def test_convert_errors(viewer_client, rates, params, status, error):
    response = viewer_client.get(reverse("rates-api:rate-convert"), params)
    assert response.status_code == status, response.json()
    assert response.json()["error"] == error
    if error == "unknown_currency":
        assert response.json()["fields"] == {"to": ["Unknown currency 'XYZ': not an ISO 4217 code known here."]}


def test_update_queues_a_job_after_commit(client_as, operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_as(operator).post(reverse("rates-api:rates-update"), {"provider": "ecb"})
    assert response.status_code == 202
    body = response.json()
    assert body["progress_url"] == f"http://testserver/api/v1/rates/jobs/{body['job_id']}/"
    assert len(callbacks) == 1


def test_update_rejects_an_unknown_provider(client_as, operator):
    response = client_as(operator).post(reverse("rates-api:rates-update"), {"provider": "bank-of-nowhere"})
    assert response.status_code == 400
    assert "provider" in response.json()["fields"]


@pytest.mark.parametrize(
    ("caller", "status"), [("anonymous", 401), ("no_role", 403), ("viewer", 403), ("operator", 202), ("staff", 202)]
)
@pytest.mark.parametrize("url", ["/api/v1/rates/update/", "/v1/rates/update"])
def test_only_operators_trigger_updates(api_client, client_as, caller, status, url, django_capture_on_commit_callbacks):
    from accounts.tests.factories import UserFactory

    users = {
        "no_role": lambda: UserFactory(),
        "viewer": lambda: UserFactory(viewer=True),
        "operator": lambda: UserFactory(operator=True),
        "staff": lambda: UserFactory(staff=True),
    }
    client = client_as(users[caller]()) if caller in users else api_client
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url, {})
    assert response.status_code == status
    assert len(callbacks) == (1 if status == 202 else 0)


def test_job_progress_for_viewers(viewer_client, api_client):
    Job.objects.create(id="5b0c5a0e-0000-4000-8000-000000000000", kind="rates.update_rates", task="rates.update_rates")
    url = reverse("rates-api:job-progress", args=["5b0c5a0e-0000-4000-8000-000000000000"])
    assert api_client.get(url).status_code == 401
    body = viewer_client.get(url).json()
    assert body["state"] == "PENDING"
    assert body["complete"] is False
    assert viewer_client.get(reverse("rates-api:job-progress", args=["no-such-job"])).status_code == 404


def test_job_progress_of_another_kind_of_job_is_hidden(viewer_client):
    Job.objects.create(id="other-job", kind="sensors.import_readings", task="sensors.import_readings")
    assert viewer_client.get(reverse("rates-api:job-progress", args=["other-job"])).status_code == 404


def test_legacy_rates(viewer_client, rates):
    body = viewer_client.get("/v1/rates").json()
    assert body["base"] == "USD"
    assert body["stale"] is False
    assert body["rates"] == [
        {"currency": "KES", "rate": "130.5", "as_of": "2024-06-03", "provider": "xe"},
        {"currency": "NGN", "rate": "1480.253291", "as_of": "2024-06-03", "provider": "xe"},
    ]
    body = viewer_client.get("/v1/rates", {"currency": "JPY"}).json()
    assert body["rates"] == [
        {"currency": "JPY", "rate": "156.241376138349737835", "as_of": "2024-06-03", "provider": "ecb"}
    ]


def test_legacy_rates_unknown_or_missing(viewer_client, rates):
    assert viewer_client.get("/v1/rates", {"currency": "ZZZ"}).status_code == 400
    assert viewer_client.get("/v1/rates", {"currency": "GHS"}).status_code == 404


def test_legacy_rates_needs_a_reader(api_client, rates):
    assert api_client.get("/v1/rates").status_code == 401


def test_factory_rows_are_listed(viewer_client):
    ExchangeRateFactory(quote_id="GBP", rate=Decimal("0.85098"))
    assert viewer_client.get(reverse("rates-api:rate-list"), {"quote": "GBP"}).json()["results"][0]["rate"] == "0.85098"
