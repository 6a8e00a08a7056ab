"""The update task: exponential backoff, retries until a provider answers, a job with progress (common.jobs)."""

from datetime import date

import pytest
import responses

from common.models import Job
from rates.models import ExchangeRate, RateFetch
from rates.tasks import retry_countdown, update_rates
from rates.tests.conftest import ECB_DAILY, fixture_bytes

pytestmark = pytest.mark.django_db


def test_backoff_doubles_and_is_capped(settings):
    settings.RATES_RETRY_BACKOFF = 60
    assert [retry_countdown(n) for n in range(4)] == [60, 120, 240, 480]
    assert retry_countdown(10) == 3600


def test_retries_until_the_provider_answers(http, settings):
    settings.RATES_PROVIDERS = ["ecb"]
    settings.RATES_RETRY_MAX = 5
    http.get(ECB_DAILY, status=503)
    http.get(ECB_DAILY, body=b"garbage")
    http.get(ECB_DAILY, body=fixture_bytes("ecb_daily.xml"))
    result = update_rates.apply(kwargs={})
    assert result.state == "SUCCESS", result.traceback
    assert result.result["provider"] == "ecb"
    assert result.result["as_of"] == "2024-06-03"
    assert list(RateFetch.objects.order_by("started_at").values_list("status", flat=True)) == [
        "failed",
        "failed",
        "success",
    ]
    assert ExchangeRate.objects.count() == 12


def test_gives_up_after_the_configured_retries_and_keeps_the_old_rates(http, settings):
    settings.RATES_PROVIDERS = ["ecb"]
    settings.RATES_RETRY_MAX = 2
    http.get(ECB_DAILY, status=500)
    result = update_rates.apply(kwargs={})
    assert result.state == "FAILURE"
    assert "No provider delivered rates" in str(result.result)
    assert RateFetch.objects.filter(status="failed").count() == 3  # the first try and two retries
    assert not ExchangeRate.objects.exists()


def test_the_update_is_a_job_with_progress_and_summary(http, settings):
    settings.RATES_PROVIDERS = ["ecb"]
    http.get(ECB_DAILY, body=fixture_bytes("ecb_daily.xml"))
    result = update_rates.apply(kwargs={"provider": "ecb", "on": None}, task_id="job-progress-test")
    assert result.state == "SUCCESS"
    job = Job.objects.get(pk="job-progress-test")
    assert (job.kind, job.state, job.percent, job.label) == (
        "rates.update_rates",
        "succeeded",
        100,
        "Exchange rates update",
    )
    assert job.message == "12 rates from ecb as of 2024-06-03"
    assert job.result == result.result


def test_a_job_that_gave_up_says_why(http, settings):
    settings.RATES_PROVIDERS = ["ecb"]
    settings.RATES_RETRY_MAX = 0
    http.get(ECB_DAILY, status=500)
    result = update_rates.apply(kwargs={}, task_id="job-failed-test")
    assert result.state == "FAILURE"
    job = Job.objects.get(pk="job-failed-test")
    assert job.state == "failed"
    assert job.error.startswith("No provider delivered rates: ")


def test_a_date_is_passed_on():
    with responses.RequestsMock() as mock:
        mock.get(
            "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist-90d.xml", body=fixture_bytes("ecb_hist_90d.xml")
        )
        result = update_rates.apply(kwargs={"provider": "ecb", "on": "2024-06-02"})
    assert result.result["as_of"] == "2024-05-31"
    assert RateFetch.objects.get().requested_date == date(2024, 6, 2)
