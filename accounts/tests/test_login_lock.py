"""The one per-account lock on every path that checks a password (API token, log-in page, admin, account deletion),
and the client address taken from X-Forwarded-For only behind the configured number of trusted proxies."""

import time

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = reverse("accounts-api:token-obtain")
EMAIL = "locked@example.com"


def token_attempt(password: str, *, email: str = EMAIL, **headers):
    return APIClient().post(TOKEN, {"email": email, "password": password}, **headers)


def page_attempt(client: Client, password: str, email: str = EMAIL):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def admin_attempt(client: Client, password: str, email: str = EMAIL):
    return client.post(reverse("admin:login"), {"username": email, "password": password, "next": "/admin/"})


def assert_locked(response) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"] == "account_locked"
    assert set(body) == {"error", "detail", "fields"}
    assert int(response.headers["Retry-After"]) > 0


def test_rotating_forwarded_for_does_not_escape_the_throttle():
    """The probe: 50 wrong passwords, each with a new X-Forwarded-For, all 401. Now refused well before 50."""
    UserFactory(email=EMAIL)
    codes = [token_attempt("wrong", HTTP_X_FORWARDED_FOR=f"10.0.{i // 250}.{i % 250}").status_code for i in range(50)]
    assert 429 in codes
    assert codes.index(429) <= 5, codes
    assert set(codes[codes.index(429) :]) == {429}


def test_the_account_locks_whatever_the_address():
    """Real, distinct client addresses (a botnet) each stay under the per-address throttle; the account locks."""
    UserFactory(email=EMAIL)
    codes = [token_attempt("wrong", REMOTE_ADDR=f"10.1.0.{i}").status_code for i in range(20)]
    assert codes[:5] == [401] * 5
    assert set(codes[5:]) == {429}
    # A correct password during the lock is refused too, in the one error shape.
    assert_locked(token_attempt(DEFAULT_PASSWORD, REMOTE_ADDR="10.2.0.1"))


def test_the_lock_counts_the_account_without_regard_to_case():
    UserFactory(email=EMAIL)
    for i in range(5):
        token_attempt("wrong", email=EMAIL.upper() if i % 2 else EMAIL, REMOTE_ADDR=f"10.1.1.{i}")
    assert_locked(token_attempt(DEFAULT_PASSWORD, email="Locked@Example.COM", REMOTE_ADDR="10.2.0.2"))


def test_page_failures_lock_the_api():
    user = UserFactory(email=EMAIL)
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=user, email=EMAIL, primary=True, verified=True)
    client = Client()
    for _ in range(5):
        assert page_attempt(client, "wrong").status_code == 200
    assert_locked(token_attempt(DEFAULT_PASSWORD, REMOTE_ADDR="10.2.0.3"))


def test_api_failures_lock_the_page_and_the_admin():
    UserFactory(email=EMAIL, is_staff=True, is_superuser=True)
    for i in range(5):
        assert token_attempt("wrong", REMOTE_ADDR=f"10.1.2.{i}").status_code == 401
    client = Client()
    response = page_attempt(client, DEFAULT_PASSWORD)
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    response = admin_attempt(client, DEFAULT_PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_admin_failures_lock_the_api():
    UserFactory(email=EMAIL, is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(5):
        assert admin_attempt(client, "wrong").status_code == 200
    assert_locked(token_attempt(DEFAULT_PASSWORD, REMOTE_ADDR="10.2.0.4"))


def test_account_deletion_password_counts_and_is_locked(client):
    user = UserFactory(email=EMAIL)
    client.force_login(user)
    url = reverse("accounts:delete")
    for _ in range(5):
        assert client.post(url, {"password": "wrong", "confirm": "on"}).status_code == 200
    response = client.post(url, {"password": DEFAULT_PASSWORD, "confirm": "on"})
    assert "Too many failed login attempts" in response.content.decode()
    assert type(user).objects.filter(pk=user.pk).exists()
    assert_locked(token_attempt(DEFAULT_PASSWORD, REMOTE_ADDR="10.2.0.5"))


def test_password_change_counts_and_is_locked(client):
    user = UserFactory(email=EMAIL)
    client.force_login(user)
    url = reverse("account_change_password")
    new = {"password1": "quiet-harbour-lantern-42", "password2": "quiet-harbour-lantern-42"}
    # allauth allows 5 password changes a minute per user: 3 wrong here, 2 on the API, then the right one here.
    for _ in range(3):
        assert client.post(url, {"oldpassword": "wrong", **new}).status_code == 200
    for i in range(2):
        assert token_attempt("wrong", REMOTE_ADDR=f"10.1.6.{i}").status_code == 401
    response = client.post(url, {"oldpassword": DEFAULT_PASSWORD, **new})
    assert "Too many failed login attempts" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_a_success_before_the_limit_starts_the_count_again():
    UserFactory(email=EMAIL)
    for i in range(4):
        assert token_attempt("wrong", REMOTE_ADDR=f"10.1.3.{i}").status_code == 401
    assert token_attempt(DEFAULT_PASSWORD, REMOTE_ADDR="10.1.3.9").status_code == 201
    for i in range(4):
        assert token_attempt("wrong", REMOTE_ADDR=f"10.1.4.{i}").status_code == 401
    assert token_attempt(DEFAULT_PASSWORD, REMOTE_ADDR="10.1.4.9").status_code == 201


@override_settings(ACCOUNTS_LOGIN_LOCK_SECONDS=1)
def test_the_lock_expires():
    UserFactory(email=EMAIL)
    for i in range(5):
        token_attempt("wrong", REMOTE_ADDR=f"10.1.5.{i}")
    assert_locked(token_attempt(DEFAULT_PASSWORD, REMOTE_ADDR="10.1.5.9"))
    time.sleep(1.2)
    assert token_attempt(DEFAULT_PASSWORD, REMOTE_ADDR="10.1.5.10").status_code == 201


# --- the client address ------------------------------------------------------------------------------------------


def test_forwarded_for_is_ignored_without_trusted_proxies(monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    rates = {"anon": "3/minute", "user": "1000/minute", "device": "1000/minute"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    url = reverse("api-schema")
    codes = [APIClient().get(url, HTTP_X_FORWARDED_FOR=f"10.3.0.{i}").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]


def test_with_one_trusted_proxy_the_address_it_appended_counts(monkeypatch):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = {"anon": "3/minute", "user": "1000/minute", "device": "1000/minute"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(api_settings, "NUM_PROXIES", 1)
    url = reverse("api-schema")
    # The client may put anything first; the proxy appends the address it saw, which is the one counted.
    codes = [APIClient().get(url, HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, 10.4.0.{i}").status_code for i in range(4)]
    assert codes == [200] * 4
    codes = [APIClient().get(url, HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, 10.4.0.99").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]


def test_the_trusted_proxy_setting_drives_drf_and_allauth():
    from allauth import app_settings as allauth_settings
    from django.conf import settings

    assert settings.TRUSTED_PROXY_COUNT == 0
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.TRUSTED_PROXY_COUNT
    assert allauth_settings.TRUSTED_PROXY_COUNT == settings.TRUSTED_PROXY_COUNT
